"""A small Hugging Face Hub-compatible HTTP server for the tests (standard library only).

The real ``huggingface_hub``, ``transformers`` and ``datasets`` clients talk to it over HTTP on
127.0.0.1, unpatched. It keeps git-like history in memory: every repo (model or dataset) has commits
(content-addressed, with parents) and branches; revisions resolve by branch name or commit sha.
Files are stored once per content (regular files by git blob sha1, LFS files by sha256).

Implemented routes (the ones the clients use for push, pull, datasets and model cards)::

    GET  /api/whoami-v2
    POST /api/repos/create            DELETE /api/repos/delete        PUT /api/{type}s/{id}/settings
    GET  /api/{type}s/{id}[/revision/{rev}]
    POST /api/{type}s/{id}/preupload/{rev}        POST /api/{type}s/{id}/commit/{rev}   (NDJSON)
    GET  /api/{type}s/{id}/tree/{rev}[/{path}]    POST /api/{type}s/{id}/paths-info/{rev}
    GET  /api/{type}s/{id}/refs                   GET  /api/{type}s/{id}/commits/{rev}
    POST|DELETE /api/{type}s/{id}/branch/{name}
    POST /api/validate-yaml
    POST /[datasets/]{id}.git/info/lfs/objects/batch   PUT /lfs-upload/{oid}   POST /lfs-verify/{oid}
    GET|HEAD /[datasets/]{id}/resolve/{rev}/{path}    (Range, X-Repo-Commit, ETag, X-Linked-*)

Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) and ``X-Error-Message``
as the Hub does, so the client raises its own typed errors. Private repos are visible only to their
owner's tokens (401 + RepoNotFound otherwise, as on the Hub); writes need a token.

Fault injection for tests: :meth:`HubServer.fail_next` (a route answers an error, or drops the
connection half-way through reading the request) and :meth:`HubServer.corrupt_file` (stored bytes
change, the recorded hashes do not: what bit rot on the storage side looks like to a client).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

REPO_TYPES = ("model", "dataset", "space")
#: Paths stored through LFS whatever their content (the Hub's default .gitattributes, abridged).
LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".npy", ".npz",
    ".parquet", ".arrow", ".zip", ".gz", ".tar", ".pkl", ".pickle", ".model", ".tflite", ".zst",
)  # fmt: skip
LFS_THRESHOLD = 10 * 1024 * 1024
#: Hub task ids accepted as ``pipeline_tag`` by /api/validate-yaml (the Hub's list, abridged).
HUB_TASKS = frozenset(
    """text-classification token-classification table-question-answering question-answering
    zero-shot-classification translation summarization feature-extraction text-generation fill-mask
    sentence-similarity text-to-speech text-to-audio automatic-speech-recognition audio-to-audio
    audio-classification voice-activity-detection depth-estimation image-classification
    object-detection image-segmentation text-to-image image-to-text image-to-image image-to-video
    unconditional-image-generation video-classification reinforcement-learning robotics
    tabular-classification tabular-regression tabular-to-text table-to-text multiple-choice
    text-ranking text-retrieval time-series-forecasting text-to-video image-text-to-text
    visual-question-answering document-question-answering zero-shot-image-classification
    graph-ml mask-generation zero-shot-object-detection text-to-3d image-to-3d
    image-feature-extraction video-text-to-text keypoint-detection any-to-any other""".split()  # noqa: SIM905
)


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


class HubError(Exception):
    """An HTTP error answered the way the Hub answers it."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True)
class StoredFile:
    size: int
    blob_id: str  # git sha1 of the content (regular) or of the LFS pointer
    sha256: str | None = None  # set for LFS files

    @property
    def key(self) -> str:
        return self.sha256 or self.blob_id

    def entry(self, path: str) -> dict[str, Any]:
        info: dict[str, Any] = {"type": "file", "oid": self.blob_id, "size": self.size, "path": path}
        if self.sha256:
            pointer = len(lfs_pointer(self.sha256, self.size))
            info["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": pointer}
        return info


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    files: dict[str, StoredFile]
    date: str


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    created: str = ""

    def resolve(self, revision: str) -> Commit:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if re.fullmatch(r"[0-9a-f]{40}", revision) and revision in self.commits:
            return self.commits[revision]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


@dataclass
class Fault:
    route: str
    times: int
    status: int
    drop_connection: bool


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class HubState:
    """Repos, blobs and users; every public method is safe to call from the handler threads."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.blobs: dict[str, bytes] = {}
        self.tokens: dict[str, str] = dict(users or {})  # token -> user name
        self.orgs: dict[str, set[str]] = {}  # org -> members
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []
        self._counter = 0

    # ---- users
    def user_for(self, token: str | None) -> str | None:
        if token is None:
            return None
        if token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.tokens[token]

    def may_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (user == namespace or user in self.orgs.get(namespace, set()))

    # ---- repos
    def get_repo(self, repo_type: str, repo_id: str, user: str | None, write: bool = False) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        namespace = repo_id.split("/")[0]
        if repo is None or (repo.private and not self.may_write(user, namespace)):
            status = 401 if user is None else 404
            raise HubError(status, "Repository not found", "RepoNotFound")
        if write and not self.may_write(user, namespace):
            raise HubError(403, f"You don't have the rights to write to {repo_id}.")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, "You already created this repo")
            repo = Repo(repo_type, repo_id, private, created=_now())
            gitattributes = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES)
            self._commit(repo, "main", "initial commit", "", {".gitattributes": gitattributes.encode()}, {})
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def _store_regular(self, content: bytes) -> StoredFile:
        blob_id = git_blob_sha1(content)
        self.blobs.setdefault(blob_id, content)
        return StoredFile(len(content), blob_id)

    def _commit(
        self,
        repo: Repo,
        branch: str,
        title: str,
        message: str,
        regular: dict[str, bytes],
        lfs: dict[str, str],
        deleted: tuple[str, ...] = (),
        deleted_folders: tuple[str, ...] = (),
        parent_expected: str | None = None,
    ) -> Commit:
        with self.lock:
            parent = repo.branches.get(branch)
            if parent_expected is not None and parent_expected != parent:
                raise HubError(412, f"A commit has happened since {parent_expected}. Please refresh.")
            files = dict(repo.commits[parent].files) if parent else {}
            for path in deleted:
                if path not in files:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del files[path]
            for folder in deleted_folders:
                prefix = folder.rstrip("/") + "/"
                for path in [p for p in files if p.startswith(prefix)]:
                    del files[path]
            for path, content in regular.items():
                files[path] = self._store_regular(content)
            for path, sha256 in lfs.items():
                if sha256 not in self.blobs:
                    raise HubError(400, f"LFS object {sha256} for {path} was never uploaded.")
                size = len(self.blobs[sha256])
                files[path] = StoredFile(size, git_blob_sha1(lfs_pointer(sha256, size)), sha256)
            self._counter += 1
            tree = {p: f.key for p, f in sorted(files.items())}
            body = json.dumps([repo.repo_id, parent, title, tree, self._counter]).encode()
            oid = hashlib.sha1(body).hexdigest()
            commit = Commit(oid, parent, title, message, files, _now())
            repo.commits[oid] = commit
            repo.branches[branch] = oid
            return commit

    # ---- faults
    def take_fault(self, route: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.route == route and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None


_API_REPO = re.compile(r"^/api/(models|datasets|spaces)/([^/]+)/([^/]+)(?:/(.*))?$")
_LFS_BATCH = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+)\.git/info/lfs/objects/batch$")
_RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # ---- plumbing
    @property
    def state(self) -> HubState:
        return self.server.state

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _token(self) -> str | None:
        header = self.headers.get("Authorization", "")
        return header[7:].strip() or None if header.lower().startswith("bearer ") else None

    def _read_body(self, limit: int | None = None) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length if limit is None else min(limit, length))

    def _send(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, content_type: str = ""
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.state.log.append((self.command, self.path, status))

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers, "application/json")

    def _error(self, error: HubError) -> None:
        headers = {"X-Error-Message": error.message}
        if error.code:
            headers["X-Error-Code"] = error.code
        self._json(error.status, {"error": error.message}, headers)

    def _drop(self) -> None:
        """Simulate a server crash: no response, connection closed."""
        self.state.log.append((self.command, self.path, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        try:
            route = self._route(path)
            if route is None:
                self._read_body()
                raise HubError(404, f"Sorry, we can't find the page you are looking for: {path}")
            name, handler, args = route
            fault = self.state.take_fault(name)
            if fault is not None:
                if fault.drop_connection:
                    length = int(self.headers.get("Content-Length") or 0)
                    self._read_body(limit=length // 2)
                    return self._drop()
                self._read_body()
                raise HubError(fault.status, f"injected fault on {name}")
            handler(*args)
        except HubError as error:
            self._error(error)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch

    def _route(self, path: str) -> tuple[str, Any, tuple] | None:
        method = self.command
        if path == "/api/whoami-v2" and method == "GET":
            return "whoami", self.whoami, ()
        if path == "/api/repos/create" and method == "POST":
            return "create", self.create_repo, ()
        if path == "/api/repos/delete" and method == "DELETE":
            return "delete", self.delete_repo, ()
        if path == "/api/validate-yaml" and method == "POST":
            return "validate-yaml", self.validate_yaml, ()
        if m := re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path):
            return "lfs-upload", self.lfs_upload, (m.group(1),)
        if m := re.fullmatch(r"/lfs-verify/([0-9a-f]{64})", path):
            return "lfs-verify", self.lfs_verify, (m.group(1),)
        if (m := _LFS_BATCH.match(path)) and method == "POST":
            repo_type = (m.group(1) or "models")[:-1]
            return "lfs-batch", self.lfs_batch, (repo_type, f"{unquote(m.group(2))}/{unquote(m.group(3))}")
        if m := _API_REPO.match(path):
            repo_type = m.group(1)[:-1]
            repo_id = f"{unquote(m.group(2))}/{unquote(m.group(3))}"
            rest = (m.group(4) or "").split("/")
            action, args = rest[0], [unquote(part) for part in rest[1:]]
            table = {
                ("", "GET"): ("info", self.repo_info),
                ("revision", "GET"): ("info", self.repo_info),
                ("preupload", "POST"): ("preupload", self.preupload),
                ("commit", "POST"): ("commit", self.commit),
                ("tree", "GET"): ("tree", self.tree),
                ("paths-info", "POST"): ("paths-info", self.paths_info),
                ("refs", "GET"): ("refs", self.refs),
                ("commits", "GET"): ("commits", self.list_commits),
                ("branch", "POST"): ("branch", self.create_branch),
                ("branch", "DELETE"): ("branch", self.delete_branch),
                ("settings", "PUT"): ("settings", self.settings),
            }
            if (action, method) in table:
                name, handler = table[(action, method)]
                return name, handler, (repo_type, repo_id, args)
            return None
        if (m := _RESOLVE.match(path)) and method in ("GET", "HEAD"):
            repo_type = (m.group(1) or "models")[:-1]
            repo_id = f"{unquote(m.group(2))}/{unquote(m.group(3))}"
            return "resolve", self.resolve, (repo_type, repo_id, unquote(m.group(4)), unquote(m.group(5)))
        return None

    def _user(self) -> str | None:
        return self.state.user_for(self._token())

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        return self.state.get_repo(repo_type, repo_id, self._user(), write)

    def _json_body(self) -> Any:
        body = self._read_body()
        try:
            return json.loads(body or b"{}")
        except json.JSONDecodeError as error:
            raise HubError(400, f"invalid JSON body: {error}") from error

    # ---- account and repos
    def whoami(self) -> None:
        user = self._user()
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        orgs = [{"name": org, "type": "org"} for org, members in self.state.orgs.items() if user in members]
        auth = {"type": "access_token", "accessToken": {"displayName": "tests", "role": "write"}}
        self._json(200, {"type": "user", "name": user, "fullname": user, "orgs": orgs, "auth": auth})

    def create_repo(self) -> None:
        payload = self._json_body()
        user = self._user()
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        namespace = payload.get("organization") or user
        repo_id = f"{namespace}/{payload['name']}"
        repo_type = payload.get("type") or "model"
        if not self.state.may_write(user, namespace):
            raise HubError(403, f"You don't have the rights to create a repo under {namespace}")
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        try:
            self.state.create_repo(repo_type, repo_id, private)
        except HubError as error:
            if error.status == 409:
                url = self._repo_url(repo_type, repo_id)
                return self._json(
                    409, {"error": error.message, "url": url}, {"X-Error-Message": error.message}
                )
            raise
        self._json(200, {"url": self._repo_url(repo_type, repo_id), "name": repo_id, "id": repo_id})

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        return f"{self.endpoint}/{prefix}{repo_id}"

    def delete_repo(self) -> None:
        payload = self._json_body()
        user = self._user()
        repo_id = f"{payload.get('organization') or user}/{payload['name']}"
        repo_type = payload.get("type") or "model"
        self.state.get_repo(repo_type, repo_id, user, write=True)
        with self.state.lock:
            del self.state.repos[(repo_type, repo_id)]
        self._json(200, {})

    def settings(self, repo_type: str, repo_id: str, args: list[str]) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        payload = self._json_body()
        if "private" in payload:
            repo.private = bool(payload["private"])
        if "visibility" in payload:
            repo.private = payload["visibility"] == "private"
        self._json(200, {"private": repo.private})

    def repo_info(self, repo_type: str, repo_id: str, args: list[str]) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = repo.resolve(args[0] if args else "main")
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "createdAt": repo.created,
            "lastModified": commit.date,
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }
        if repo_type == "model":
            info["modelId"] = repo_id
        self._json(200, info, {"X-Repo-Commit": commit.oid})

    def validate_yaml(self) -> None:
        payload = self._json_body()
        errors = _validate_card_metadata(payload.get("content", ""))
        if errors:
            return self._json(
                400, {"errors": [{"message": e} for e in errors]}, {"X-Error-Message": errors[0]}
            )
        self._json(200, {"warnings": []})

    # ---- refs and history
    def refs(self, repo_type: str, repo_id: str, args: list[str]) -> None:
        repo = self._repo(repo_type, repo_id)
        branches = [
            {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
            for name, oid in repo.branches.items()
        ]
        self._json(200, {"branches": branches, "converts": [], "tags": []})

    def list_commits(self, repo_type: str, repo_id: str, args: list[str]) -> None:
        repo = self._repo(repo_type, repo_id)
        commit: Commit | None = repo.resolve(args[0] if args else "main")
        history = []
        while commit is not None:
            history.append(
                {
                    "id": commit.oid,
                    "title": commit.title,
                    "message": commit.message,
                    "authors": [],
                    "date": commit.date,
                }
            )
            commit = repo.commits.get(commit.parent) if commit.parent else None
        self._json(200, history)

    def create_branch(self, repo_type: str, repo_id: str, args: list[str]) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        payload = self._json_body()
        name = "/".join(args)
        if name in repo.branches:
            raise HubError(409, f"Reference refs/heads/{name} already exists")
        start = repo.resolve(payload.get("startingPoint") or "main")
        with self.state.lock:
            repo.branches[name] = start.oid
        self._json(200, {})

    def delete_branch(self, repo_type: str, repo_id: str, args: list[str]) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        name = "/".join(args)
        if name not in repo.branches or name == "main":
            raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
        with self.state.lock:
            del repo.branches[name]
        self._json(200, {})

    # ---- reading files
    def _tree_entries(self, commit: Commit, path: str, recursive: bool) -> list[dict[str, Any]]:
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        files, folders = [], set()
        for name, stored in sorted(commit.files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                files.append(stored.entry(name))
        dirs = [
            {"type": "directory", "oid": _tree_oid(commit, d), "size": 0, "path": d} for d in sorted(folders)
        ]
        return dirs + files

    def tree(self, repo_type: str, repo_id: str, args: list[str]) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = repo.resolve(args[0] if args else "main")
        path = "/".join(args[1:])
        query = parse_qs(urlsplit(self.path).query)
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        if (
            path
            and path not in commit.files
            and not any(p.startswith(path.rstrip("/") + "/") for p in commit.files)
        ):
            raise HubError(404, f"{path} does not exist on {args[0]}", "EntryNotFound")
        self._json(200, self._tree_entries(commit, path, recursive))

    def paths_info(self, repo_type: str, repo_id: str, args: list[str]) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = repo.resolve(args[0] if args else "main")
        body = self._read_body().decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(body or "{}").get("paths", [])
        else:
            paths = parse_qs(body).get("paths", [])
        entries = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                entries.append(commit.files[path].entry(path))
            elif any(p.startswith(path + "/") for p in commit.files) or path == "":
                entries.append({"type": "directory", "oid": _tree_oid(commit, path), "size": 0, "path": path})
        self._json(200, entries)

    def resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = repo.resolve(revision)
        stored = commit.files.get(path)
        if stored is None:
            error = HubError(404, "Entry not found", "EntryNotFound")
            headers = {
                "X-Error-Code": "EntryNotFound",
                "X-Error-Message": "Entry not found",
                "X-Repo-Commit": commit.oid,
            }
            return self._json(404, {"error": error.message}, headers)
        content = self.state.blobs[stored.key]
        etag = stored.sha256 or stored.blob_id
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if stored.sha256:
            headers["X-Linked-Etag"] = f'"{stored.sha256}"'
            headers["X-Linked-Size"] = str(stored.size)
        status = 200
        byte_range = self.headers.get("Range")
        if byte_range and (m := re.fullmatch(r"bytes=(\d*)-(\d*)", byte_range.strip())):
            start_text, end_text = m.groups()
            if start_text:
                start, end = int(start_text), int(end_text) if end_text else len(content) - 1
            else:
                start, end = max(0, len(content) - int(end_text)), len(content) - 1
            end = min(end, len(content) - 1)
            if start >= len(content):
                headers["Content-Range"] = f"bytes */{len(content)}"
                return self._send(416, b"", headers)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            content, status = content[start : end + 1], 206
        self._send(status, content, headers, "application/octet-stream")

    # ---- writing files
    def preupload(self, repo_type: str, repo_id: str, args: list[str]) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        commit = repo.resolve(args[0] if args else "main")
        files = []
        for item in self._json_body().get("files", []):
            sample = base64.b64decode(item.get("sample", ""))
            lfs = (
                item["path"].endswith(LFS_SUFFIXES)
                or item.get("size", 0) >= LFS_THRESHOLD
                or _is_binary(sample)
            )
            existing = commit.files.get(item["path"])
            oid = None
            if existing is not None:
                oid = existing.sha256 if existing.sha256 else existing.blob_id
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        self._json(200, {"files": files, "commitOid": commit.oid})

    def lfs_batch(self, repo_type: str, repo_id: str) -> None:
        self._repo(repo_type, repo_id, write=True)
        payload = self._json_body()
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.state.blobs:
                entry["actions"] = {
                    "upload": {"href": f"{self.endpoint}/lfs-upload/{oid}", "header": {}},
                    "verify": {"href": f"{self.endpoint}/lfs-verify/{oid}", "header": {}},
                }
            objects.append(entry)
        body = json.dumps({"transfer": "basic", "objects": objects}).encode()
        self._send(200, body, None, "application/vnd.git-lfs+json")

    def lfs_upload(self, oid: str) -> None:
        content = self._read_body()
        if hashlib.sha256(content).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not hash to {oid}")
        with self.state.lock:
            self.state.blobs.setdefault(oid, content)
        self._send(200)

    def lfs_verify(self, oid: str) -> None:
        payload = self._json_body()
        stored = self.state.blobs.get(oid)
        if stored is None or len(stored) != int(payload.get("size", -1)):
            raise HubError(404, f"object {oid} not found")
        self._json(200, {})

    def commit(self, repo_type: str, repo_id: str, args: list[str]) -> None:
        repo = self._repo(repo_type, repo_id, write=True)
        branch = args[0] if args else "main"
        query = parse_qs(urlsplit(self.path).query)
        lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        if query.get("create_pr", ["0"])[0] in ("1", "true"):
            raise HubError(400, "pull requests are not supported by the test Hub")
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        header: dict[str, Any] = {}
        regular: dict[str, bytes] = {}
        lfs: dict[str, str] = {}
        deleted: list[str] = []
        deleted_folders: list[str] = []
        for line in lines:
            key, value = line.get("key"), line.get("value", {})
            if key == "header":
                header = value
            elif key == "file":
                regular[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                lfs[value["path"]] = value["oid"]
            elif key == "deletedFile":
                deleted.append(value["path"])
            elif key == "deletedFolder":
                deleted_folders.append(value["path"])
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        commit = self.state._commit(
            repo,
            branch,
            header.get("summary", ""),
            header.get("description", ""),
            regular,
            lfs,
            tuple(deleted),
            tuple(deleted_folders),
            header.get("parentCommit"),
        )
        url = f"{self._repo_url(repo_type, repo_id)}/commit/{commit.oid}"
        self._json(200, {"commitUrl": url, "commitOid": commit.oid, "success": True})


def _tree_oid(commit: Commit, path: str) -> str:
    prefix = path.rstrip("/") + "/" if path else ""
    listing = sorted((p, f.key) for p, f in commit.files.items() if p.startswith(prefix))
    return hashlib.sha1(json.dumps(listing).encode()).hexdigest()


def _is_binary(sample: bytes) -> bool:
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start < len(sample) - 4  # a multi-byte character cut by the sample is still text
    return False


def _validate_card_metadata(content: str) -> list[str]:
    """The checks of the Hub's /api/validate-yaml that matter here (front matter and pipeline_tag)."""
    if not content.startswith("---"):
        return []  # no metadata: the Hub only warns
    parts = content.split("\n---", 1)
    if len(parts) < 2:
        return ["The YAML metadata block is not closed by '---'."]
    errors = []
    for line in parts[0].splitlines()[1:]:
        if line and not line.startswith((" ", "-", "#")) and ":" not in line:
            errors.append(f"Invalid YAML line: {line!r}")
        if line.startswith("pipeline_tag:"):
            task = line.split(":", 1)[1].strip().strip("'\"")
            if task not in HUB_TASKS:
                errors.append(f'"pipeline_tag" must be a Hub task, got {task!r}; put custom names in "tags".')
    return errors


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: HubState) -> None:
        self.state = state
        super().__init__(address, _Handler)


class HubServer:
    """Run the test Hub on 127.0.0.1 in a background thread; inspect and break it from the tests."""

    def __init__(self, port: int = 0, users: dict[str, str] | None = None) -> None:
        self.state = HubState(users)
        self._server = _Server(("127.0.0.1", port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- users
    def add_user(self, name: str, token: str, orgs: tuple[str, ...] = ()) -> None:
        with self.state.lock:
            self.state.tokens[token] = name
            for org in orgs:
                self.state.orgs.setdefault(org, set()).add(name)

    # ---- inspection
    def commits(self, repo_id: str, repo_type: str = "model", branch: str = "main") -> list[str]:
        """Commit shas of ``branch``, newest first."""
        repo = self.state.repos[(repo_type, repo_id)]
        oids, oid = [], repo.branches[branch]
        while oid:
            oids.append(oid)
            oid = repo.commits[oid].parent
        return oids

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        commit = self.state.repos[(repo_type, repo_id)].resolve(revision)
        return {path: self.state.blobs[f.key] for path, f in commit.files.items()}

    def requests(self, route_contains: str = "", method: str | None = None) -> list[tuple[str, str, int]]:
        return [r for r in self.state.log if route_contains in r[1] and (method is None or r[0] == method)]

    # ---- fault injection
    def fail_next(self, route: str, times: int = 1, status: int = 500, drop_connection: bool = False) -> None:
        """Make the next ``times`` requests to ``route`` fail.

        ``route`` is one of: info, preupload, lfs-batch, lfs-upload, lfs-verify, commit, resolve, tree,
        paths-info, validate-yaml, create. With ``drop_connection`` the server reads half the request
        body and closes the socket without answering (a crash mid-request); otherwise it answers
        ``status``. Nothing the failed request carried is stored.
        """
        with self.state.lock:
            self.state.faults.append(Fault(route, times, status, drop_connection))

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()

    def corrupt_file(
        self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model", mode: str = "flip"
    ) -> None:
        """Damage the stored bytes of a file; its recorded size and hashes are left as they were.

        ``mode="flip"`` inverts bytes in the middle (same size), ``"truncate"`` drops the second half,
        ``"header"`` overwrites the first 16 bytes.
        """
        stored = self.state.repos[(repo_type, repo_id)].resolve(revision).files[path]
        with self.state.lock:
            data = bytearray(self.state.blobs[stored.key])
            middle = len(data) // 2
            if mode == "flip":
                data[middle : middle + 8] = bytes(255 - b for b in data[middle : middle + 8])
            elif mode == "truncate":
                del data[middle:]
            elif mode == "header":
                data[:16] = b"\xff" * 16
            else:
                raise ValueError(f"unknown corruption mode {mode!r}; use 'flip', 'truncate' or 'header'.")
            self.state.blobs[stored.key] = bytes(data)


def serve_forever(port: int, users: dict[str, str]) -> None:  # pragma: no cover - manual use
    server = HubServer(port, users).start()
    print(f"test Hub on {server.endpoint}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


__all__ = ["HubError", "HubServer", "HubState", "git_blob_sha1", "lfs_pointer"]
