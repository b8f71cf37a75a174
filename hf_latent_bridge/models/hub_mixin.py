"""One artifact contract for every model of the package: save, push and load, with the same checks.

:class:`HubCardMixin` goes in front of ``PreTrainedModel`` in a model's bases
(``class LatentBridge(HubCardMixin, PreTrainedModel)``). A model class provides two things:

- ``card_info()``: what its model card says (a :class:`~hf_latent_bridge.models.cards.CardInfo`);
- ``_check_loaded_tensors(where)``: the invariants its loaded tensors must hold (the mixin's own
  check, that every floating tensor is finite, runs through ``super()``).

In return it gets:

- ``save_pretrained``: config, safetensors and the model card (README.md), written beside the folder
  and swapped in atomically (:func:`hf_latent_bridge.files.update_folder`): a failure or a kill leaves
  the previous save loadable; the user's own files in the folder are kept, and a file of theirs that
  would be replaced (their README stays; their ``modeling_latent_bridge.py``, a file where the folder
  should be) is refused unless ``overwrite=True``;
- ``push_to_hub``: the same files as ONE commit; a README the user wrote on the Hub is kept unless
  ``overwrite_model_card=True``;
- ``from_pretrained`` (a folder, or a Hub repo with ``revision=`` and ``subfolder=``): downloads only
  ``config.json`` and the safetensors, verifies them against the Hub's hashes, checks the config
  (:mod:`.checkpoint`), compares the stored tensors' names, dtypes and shapes with what the config
  describes before anything is loaded, then checks the loaded values. Every refusal is a
  :class:`~hf_latent_bridge.errors.CheckpointError` that says what to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import CommitInfo, HfApi, ModelCard, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError

from ..core.validation import check_finite
from ..encoding.provenance import is_hub_id
from ..errors import BridgeInputError, CheckpointError, LatentBridgeError, OutputError
from ..files import update_folder
from . import modeling_latent_bridge
from .cards import CardInfo, is_generated_card, render_model_card
from .checkpoint import (
    CONFIG_NAME,
    MAX_JSON_BYTES,
    SHARD_PATTERN,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
    build_config,
    check_checkpoint,
    local_folder,
    read_config_dict,
    read_json,
)

logger = logging.getLogger(__name__)


CARD_NAME = "README.md"


#: The standalone modeling code that ``remote_code=True`` saves ship.
REMOTE_CODE_NAME = Path(modeling_latent_bridge.__file__).name


#: What a load downloads: never pickles, never code.
LOAD_PATTERNS = (CONFIG_NAME, WEIGHTS_NAME, "model-*-of-*.safetensors", WEIGHTS_INDEX_NAME)


#: Files a push replaces wholesale, so a repo never mixes weights (or code) of two pushes.
REPLACED_ON_PUSH = ("*.safetensors", "*.safetensors.index.json", "*.py")


#: Files of a 0.1.0 ClassificationHead save, replaced when a new save goes to the same folder.
LEGACY_HEAD_FILES = ("head_config.json", "head.safetensors")


#: Keyword arguments of ``from_pretrained`` that concern the download, not the model.
_DOWNLOAD_KWARGS = ("revision", "token", "cache_dir", "force_download", "local_files_only")


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class HubCardMixin:
    """Save (atomic, with a card), push (one commit) and strict ``from_pretrained`` for a PreTrainedModel.

    Mix in before ``PreTrainedModel``; subclasses define ``card_info()`` and may extend
    ``_check_loaded_tensors()``.
    """

    # ------------------------------------------------------------------ what each model describes
    def card_info(self) -> CardInfo:
        """What the model card says; every model class defines its own."""
        raise NotImplementedError(f"{type(self).__name__} must define card_info() returning a CardInfo.")

    def _check_loaded_tensors(self, where: str) -> None:
        """Refuse loaded tensors the model cannot compute with. Here: every floating tensor is finite;
        subclasses add the invariants of their maths (calling ``super()``)."""
        for name, tensor in self.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise CheckpointError(
                    f"{where}: tensor {name!r} holds NaN or Inf values, so every output would be garbage. "
                    "The file was damaged or saved from a broken model: download it again "
                    "(force_download=True), or fit and save the model again."
                )

    def _non_finite_error(self, inputs: torch.Tensor, what: str, hint: str) -> LatentBridgeError:
        """Why computing ``what`` from finite-looking ``inputs`` gave NaN or Inf, as the error to raise:
        NaN/Inf in the inputs (rows named), a damaged tensor of the model (named), or an overflow."""
        check_finite(inputs, "embeddings")
        for name, tensor in self.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return CheckpointError(
                    f"the {type(self).__name__}'s tensor {name!r} holds NaN or Inf (it was changed after loading "
                    f"or fitting), so its {what} would be garbage. Load the model again with from_pretrained, or "
                    "fit it again."
                )
        largest = float(inputs.detach().abs().max())
        return BridgeInputError(
            f"computing the {what} overflowed {self.dtype}: the embeddings are too large for this model (largest "
            f"|value| {largest:.3g}); rescale them, {hint}."
        )

    def model_card(self, repo_id: str | None = None, remote_code: bool = False) -> ModelCard:
        """The model card of this model (``repo_id``: the repo or folder its code examples load)."""
        return render_model_card(self.card_info(), repo_id=repo_id, remote_code=remote_code)

    # ------------------------------------------------------------------ saving
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        remote_code: bool = False,
        overwrite: bool = False,
        overwrite_model_card: bool = False,
        **kwargs: Any,
    ) -> None:
        """Save ``config.json``, ``model.safetensors`` and the model card (README.md) to a folder.

        The files are written beside the folder and swapped in atomically: a failure or a kill at any
        point leaves the previous save whole and loadable, with no debris. Other files in the folder
        are kept. A README.md of the user's own (without the generated-card marker) is kept unless
        ``overwrite_model_card``.

        Args:
            remote_code: also copy the modeling code and write ``auto_map`` so that
                ``AutoModel.from_pretrained(..., trust_remote_code=True)`` loads the folder without this
                package (see the model card for the trade-off).
            overwrite: allow replacing a file of the user's that has a name this save writes (e.g. their
                own ``modeling_latent_bridge.py`` or ``config.json``), or a file where the folder should be.
            kwargs: passed to ``PreTrainedModel.save_pretrained`` (e.g. ``max_shard_size``).

        Raises:
            OutputError: if a file of the user's would be replaced without ``overwrite``, or the folder
                cannot be written.
        """
        for option in ("push_to_hub", "variant"):
            if kwargs.get(option):
                raise BridgeInputError(
                    f"save_pretrained does not take {option}= here: save to a folder, then call "
                    "push_to_hub(repo_id) to share it."
                )
        if kwargs.get("safe_serialization") is False:
            raise BridgeInputError("models of this package are saved as safetensors only (never pickle).")
        target = Path(save_directory).expanduser()
        owned, users_readme = package_files(target, overwrite_model_card)
        card = None if users_readme else self.model_card(target.name, remote_code=remote_code)
        try:
            with update_folder(target, owned, overwrite=overwrite) as staging:
                self._write_files(staging, remote_code=remote_code, card=card, **kwargs)
        except (OSError, SafetensorError) as error:
            raise OutputError(
                f"saving to {target} failed ({type(error).__name__}: {error}); the folder was left as it was. "
                "Free some space or choose another folder, then save again."
            ) from error

    def _write_files(
        self, folder: str | os.PathLike, *, remote_code: bool, card: ModelCard | None, **kwargs: Any
    ) -> None:
        """Write the model's files into an empty ``folder``."""
        with _auto_classes(self, remote_code, folder):
            super().save_pretrained(folder, **kwargs)
        if card is not None:
            card.save(os.path.join(folder, CARD_NAME))

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
        overwrite_model_card: bool = False,
        remote_code: bool = False,
        parent_commit: str | None = None,
    ) -> CommitInfo:
        """Push config, safetensors and model card to ``repo_id`` as one commit.

        Args:
            private: create the repo private (ignored when it exists).
            token: Hub token; default: the one ``huggingface_hub`` finds (``HF_TOKEN``, login).
            revision: branch to commit to (created from ``main`` if missing).
            overwrite_model_card: replace a README.md that was not generated by this library.
            remote_code: also push the modeling code with ``auto_map`` (see :meth:`save_pretrained`).
            parent_commit: fail instead of committing if the branch head moved past this sha.
        Returns:
            The ``CommitInfo``; ``.oid`` is the commit sha to pin with ``from_pretrained(revision=...)``.

        Raises:
            BridgeInputError: when the model records an encoder by a local path, which nobody who pulls the
                repo could load (before anything is created on the Hub).
        """
        self._check_shareable()
        api = HfApi()
        repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        if revision is not None and not create_pr:
            api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)

        existing = _existing_card(repo_id, revision, token)
        card = None
        if existing is None or is_generated_card(existing) or overwrite_model_card:
            card = self.model_card(repo_id, remote_code=remote_code)
            for tag in tags or ():
                if tag not in card.data.tags:
                    card.data.tags.append(tag)
            card.validate()  # the Hub's /api/validate-yaml: refuse a bad card before uploading anything
        else:
            logger.info(
                "%s has a README.md of its own: kept (pass overwrite_model_card=True to replace it).", repo_id
            )

        with tempfile.TemporaryDirectory(prefix="hlb-push-") as folder:
            self._write_files(folder, remote_code=remote_code, card=card, max_shard_size=max_shard_size)
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                commit_message=commit_message or f"Upload {type(self).__name__}",
                commit_description=commit_description,
                token=token,
                revision=revision,
                create_pr=create_pr,
                parent_commit=parent_commit,
                delete_patterns=list(REPLACED_ON_PUSH),
            )

    def _check_shareable(self) -> None:
        """Refuse to publish a model whose encoders are recorded by paths of this machine."""
        info = self.card_info()
        for role, ref in (("source", info.source), ("target", info.target)):
            if ref is not None and not is_hub_id(ref.name_or_path):
                option = "source_id" if role == "source" or info.target is None else "target_id"
                raise BridgeInputError(
                    f"this {type(self).__name__} records its {role} encoder by the local path "
                    f"{ref.name_or_path!r}, which nobody who pulls the repo can load. Name it by the Hub id "
                    f"of the model the folder holds: fit it again with {option}='namespace/name' "
                    f"(--{option.replace('_', '-')} on the command line) or from the Hub id itself, then push."
                )

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
        """Load from a local folder or a Hub repo (``revision=`` a branch or commit sha, ``subfolder=``).

        Refuses a folder or repo holding another kind of model, an invalid config, stored tensors that
        differ in name, dtype or shape from what the config describes (checked on the file headers,
        before anything is allocated), non-finite or inconsistent tensors, and files whose content does
        not match the hashes the Hub recorded. Honours ``HF_HUB_OFFLINE=1`` (loads what is cached).
        """
        name = checked_name(pretrained_model_name_or_path)
        subfolder = str(kwargs.pop("subfolder", None) or "").strip("/")
        wants_info = kwargs.pop("output_loading_info", False)
        kwargs.pop("trust_remote_code", None)  # this class's own code is used; nothing is downloaded to run
        download = {k: kwargs.pop(k) for k in _DOWNLOAD_KWARGS if k in kwargs}
        where = f"{name}/{subfolder}" if subfolder else name
        folder, commit = _checkpoint_folder(name, subfolder, download)

        data = read_config_dict(folder, cls.config_class.model_type, where)
        config = kwargs.pop("config", None) or build_config(cls.config_class.from_dict, data, where)
        check_checkpoint(cls, config, folder, where)
        try:
            model, info = super().from_pretrained(
                str(folder), *args, config=config, output_loading_info=True, **kwargs
            )
        except SafetensorError as error:
            raise CheckpointError(
                f"the tensors of {where} cannot be read ({error}); the file is corrupt: download it again "
                "(force_download=True) or re-save the model."
            ) from error
        problems = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
        if problems or info.get("error_msgs"):
            details = "; ".join(
                f"{k.replace('_', ' ')}: {', '.join(map(str, v))}" for k, v in problems.items()
            )
            raise CheckpointError(
                f"{where} is not a complete {cls.__name__} checkpoint ({details or info['error_msgs']}). "
                "Re-save it with save_pretrained, or check that the repo holds this kind of model."
            )
        model._check_loaded_tensors(where)
        if commit is not None:
            model.config._name_or_path = name
            model.config._commit_hash = commit
        return (model, info) if wants_info else model


def checked_name(pretrained_model_name_or_path: Any) -> str:
    """What ``from_pretrained`` was given, as a non-empty string (a folder or a Hub repo id)."""
    if not isinstance(pretrained_model_name_or_path, (str, os.PathLike)) or not os.fspath(
        pretrained_model_name_or_path
    ):
        raise CheckpointError(
            f"from_pretrained takes a local folder or a Hub repo id ('namespace/name'), got "
            f"{pretrained_model_name_or_path!r}."
        )
    return os.fspath(pretrained_model_name_or_path)


def _checkpoint_folder(name: str, subfolder: str, download: dict[str, Any]) -> tuple[Path, str | None]:
    """The local folder holding the checkpoint (downloaded if ``name`` is a Hub repo), and its commit."""
    where = f"{name}/{subfolder}" if subfolder else name
    local = local_folder(name, subfolder)
    if local is not None:
        if not local.is_dir():
            raise CheckpointError(f"{where} is not a folder: {name} has no subfolder {subfolder!r}.")
        return local, None
    if not is_hub_id(name):
        raise CheckpointError(
            f"{name} is neither a folder on this machine nor a Hub repo id ('namespace/name'); check the path."
        )
    snapshot, commit = download_checkpoint(name, subfolder=subfolder, **download)
    folder = Path(snapshot) / subfolder if subfolder else Path(snapshot)
    if not folder.is_dir():
        raise CheckpointError(
            f"{where}: the repo at commit {commit} has no subfolder {subfolder!r} holding a saved model; check "
            "the subfolder and the revision."
        )
    return folder, commit


def package_files(folder: Path, overwrite_model_card: bool = False) -> tuple[set[str], bool]:
    """The entries of ``folder`` that a save of this package wrote (a new save replaces them), and
    whether the folder holds a README.md of the user's own (kept: no card is written then).

    ``config.json`` is the package's if its ``model_type`` is one of the package's models; then so are
    ``model*.safetensors`` (and the index), and ``modeling_latent_bridge.py`` if the config's
    ``auto_map`` points to it. A README.md is the package's if it carries the generated-card marker.
    """
    if not folder.is_dir():
        return set(), False
    names = set(os.listdir(folder))
    owned: set[str] = set()
    config = _package_config(folder / CONFIG_NAME)
    if config is not None:
        owned.add(CONFIG_NAME)
        owned |= {n for n in names if n in (WEIGHTS_NAME, WEIGHTS_INDEX_NAME) or SHARD_PATTERN.match(n)}
        auto_map = config.get("auto_map") if isinstance(config.get("auto_map"), dict) else {}
        stem = REMOTE_CODE_NAME.removesuffix(".py")
        if any(str(v).startswith(f"{stem}.") for v in auto_map.values()):
            owned.add(REMOTE_CODE_NAME)
    code = folder / REMOTE_CODE_NAME
    if code.is_file() and _same_bytes(code, Path(modeling_latent_bridge.__file__)):
        owned.add(REMOTE_CODE_NAME)
    if _is_legacy_head(folder):
        owned |= set(LEGACY_HEAD_FILES) & names
    readme, users_readme = folder / CARD_NAME, False
    if os.path.lexists(readme):
        if overwrite_model_card or (readme.is_file() and is_generated_card(_head_text(readme))):
            owned.add(CARD_NAME)
        else:
            users_readme = True
    return owned, users_readme


def _package_config(path: Path) -> dict[str, Any] | None:
    if not path.is_file() or path.is_symlink():
        return None
    try:
        data = read_json(path, str(path.parent))
    except (CheckpointError, OSError):
        return None
    return data if data.get("model_type") in _package_model_types() else None


def _package_model_types() -> set[str]:
    types, pending = set(), [HubCardMixin]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            model_type = getattr(getattr(subclass, "config_class", None), "model_type", None)
            if model_type:
                types.add(model_type)
    return types


def _is_legacy_head(folder: Path) -> bool:
    path = folder / LEGACY_HEAD_FILES[0]
    if not path.is_file() or path.is_symlink():
        return False
    try:
        data = read_json(path, str(folder))
    except (CheckpointError, OSError):
        return False
    return {"input_dim", "num_labels", "id2label"} <= set(data)


def _same_bytes(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def _head_text(path: Path) -> str:
    with open(path, "rb") as handle:
        return handle.read(MAX_JSON_BYTES).decode("utf-8", errors="replace")


@contextlib.contextmanager
def _auto_classes(model: Any, enabled: bool, save_directory: str | os.PathLike) -> Iterator[None]:
    """For one save: copy the model's standalone remote-code module and name its classes in ``auto_map``."""
    if not enabled:
        yield
        return
    module = getattr(model, "remote_code_module", None)
    if module is None:
        raise BridgeInputError(
            f"{type(model).__name__} has no standalone code to ship: save it without remote_code=True "
            "(loading it needs the hf_latent_bridge package)."
        )
    stem = module.__name__.rpartition(".")[2]
    previous = model.config.__dict__.get("auto_map")
    model.config.auto_map = {
        "AutoConfig": f"{stem}.{module.LatentBridgeConfig.__name__}",
        "AutoModel": f"{stem}.{type(model).__name__}",
    }
    try:
        os.makedirs(save_directory, exist_ok=True)
        shutil.copyfile(module.__file__, Path(save_directory) / f"{stem}.py")
        yield
    finally:
        if previous is not None:
            model.config.auto_map = previous
        else:
            del model.config.auto_map


def _existing_card(repo_id: str, revision: str | None, token: bool | str | None) -> str | None:
    try:
        path = hf_hub_download(repo_id, CARD_NAME, revision=revision, token=token)
    except EntryNotFoundError:
        return None
    return Path(path).read_text(encoding="utf-8")


def download_checkpoint(
    repo_id: str,
    revision: str | None = None,
    token: bool | str | None = None,
    cache_dir: str | os.PathLike | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
    subfolder: str = "",
) -> tuple[str, str | None]:
    """Download (or find in the cache) a model's config and safetensors; verify them.

    Returns the local snapshot folder (the repo's root; the model is in ``subfolder`` of it) and its
    commit sha.
    """
    where = f"{repo_id!r}" + (f" (subfolder {subfolder!r})" if subfolder else "")
    where += f" at revision {revision!r}" if revision else ""
    prefix = f"{subfolder}/" if subfolder else ""
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            allow_patterns=[prefix + pattern for pattern in LOAD_PATTERNS],
        )
    except RevisionNotFoundError as error:
        raise CheckpointError(
            f"revision {revision!r} does not exist in {repo_id!r}{_known_revisions(repo_id, token)}. "
            "Pass an existing branch name or a full commit sha (the .oid returned by push_to_hub)."
        ) from error
    except RepositoryNotFoundError as error:
        raise CheckpointError(
            f"repository {repo_id!r} was not found on the Hub, and there is no local folder of that name. "
            "Check the id; if it is private, pass token= (or set HF_TOKEN) with read access."
        ) from error
    except LocalEntryNotFoundError as error:
        raise CheckpointError(
            f"{where} is not in the local cache and the Hub cannot be reached (offline mode: HF_HUB_OFFLINE=1 "
            "or no connection). Download it once while online, or unset HF_HUB_OFFLINE."
        ) from error
    except (HfHubHTTPError, OSError) as error:
        raise CheckpointError(
            f"downloading {where} failed ({type(error).__name__}: {error}). A file that arrived with the wrong "
            "size or a dropped connection: try again with force_download=True; if it persists, the repo is "
            "damaged or the Hub unreachable."
        ) from error
    commit = Path(folder).name
    verify_snapshot(Path(folder) / subfolder if subfolder else folder, where)
    return folder, commit


def _known_revisions(repo_id: str, token: bool | str | None) -> str:
    try:
        refs = HfApi().list_repo_refs(repo_id, token=token)
    except (HfHubHTTPError, OSError):
        return ""
    return f" (branches: {', '.join(sorted(b.name for b in refs.branches))})"


def verify_snapshot(folder: str | os.PathLike, where: str = "the download") -> None:
    """Check every cached LFS file against the sha256 the Hub recorded for it (its blob name).

    The Hub cache stores an LFS file as ``blobs/<sha256>``; a file whose content hashes differently was
    damaged on the server, in transit or on disk.
    """
    if not Path(folder).is_dir():
        return
    for path in sorted(Path(folder).iterdir()):
        blob = path.resolve()
        if not path.is_file() or not _SHA256.match(blob.name):
            continue
        digest = hashlib.sha256()
        with open(blob, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != blob.name:
            raise CheckpointError(
                f"{path.name} of {where} does not match the sha256 recorded by the Hub ({blob.name[:12]}..., "
                f"got {digest.hexdigest()[:12]}...): the file is corrupt. Download it again with "
                "force_download=True; if the error persists, the copy on the Hub is damaged: re-push it."
            )
