"""One artifact contract: bridge, anchor space, head and stitched model save, load and refuse alike.

Every kind is saved with ``save_pretrained`` (config.json + model.safetensors + its card) beside the
folder and renamed into place, keeping the user's files; it loads with ``from_pretrained`` from a folder,
a subfolder or a Hub repo at a revision, and is refused with a ``CheckpointError`` when its config is
invalid, its tensors disagree with the config, a loaded value breaks the maths or the file is damaged.
"""

from __future__ import annotations

import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from safetensors.torch import load_file, save_file
from transformers import AutoModel

from hf_latent_bridge import (
    AnchorSet,
    AnchorSpace,
    CheckpointError,
    ClassificationHead,
    EncoderRef,
    LatentBridge,
    OutputExistsError,
    StitchedModel,
)
from hf_latent_bridge.core.options import METHODS
from hf_latent_bridge.models.cards import CARD_MARKER
from tests.conftest import HUB_USER

ROOT = Path(__file__).resolve().parents[2]
SOURCE = EncoderRef("toy/source", revision="a" * 40, pooling="mean", modality="text")
TARGET = EncoderRef("toy/target", revision="b" * 40, pooling="mean", modality="text")
ANCHORS = AnchorSet("toy/anchors", tuple(range(40)), revision="c" * 40, split="train")
CLASSES = {
    "bridge": LatentBridge,
    "anchor_space": AnchorSpace,
    "head": ClassificationHead,
    "stitched": StitchedModel,
}
KINDS = tuple(CLASSES)
PROBE = torch.linspace(-2, 2, 3 * 12).reshape(3, 12)


@functools.cache
def build(kind: str, seed: int = 0, method: str = "irp", ensemble: int = 1):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(40, 12, generator=g), torch.randn(40, 8, generator=g)
    bridge = LatentBridge.fit(
        x if method != "identity" else y,
        y,
        method,
        source_encoder=SOURCE,
        target_encoder=TARGET,
        anchor_set=ANCHORS,
        ensemble=ensemble,
        ridge=0.1,
    )
    head = ClassificationHead.fit(
        y, torch.arange(40) % 3, id2label=["a", "b", "c"], pooling="mean", encoder=TARGET
    )
    return {
        "bridge": lambda: bridge,
        "anchor_space": lambda: AnchorSpace.from_embeddings(x, anchor_set=ANCHORS, encoder=SOURCE),
        "head": lambda: head,
        "stitched": lambda: StitchedModel.from_parts(bridge, head),
    }[kind]()


def output(model) -> torch.Tensor:
    """What each kind computes, on a fixed probe."""
    if isinstance(model, LatentBridge):
        return model.translate(torch.linspace(-2, 2, 3 * model.config.source_dim).reshape(3, -1))
    if isinstance(model, StitchedModel):
        return model.logits_from_embeddings(PROBE)
    if isinstance(model, ClassificationHead):
        return model.logits(PROBE[:, :8])
    return model.source_factor()


def same(loaded, original) -> bool:
    a, b = loaded.state_dict(), original.state_dict()
    return (
        type(loaded) is type(original)
        and a.keys() == b.keys()
        and all(torch.equal(a[n], b[n]) and a[n].dtype == b[n].dtype for n in a)
        and torch.equal(output(loaded), output(original))
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("artifacts")
    for kind in KINDS:
        build(kind).save_pretrained(root / kind)
    return {kind: root / kind for kind in KINDS}


def copy_of(saved: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    shutil.copytree(saved[kind], tmp_path / kind)
    return tmp_path / kind


# ------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_saves_with_its_card_and_loads_bit_for_bit(kind, saved):
    folder = saved[kind]
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    card = ModelCard.load(folder / "README.md")
    assert CARD_MARKER in card.text and card.data.library_name == "hf_latent_bridge"
    assert card.text == build(kind).model_card(kind).text  # a local save names its folder in the code
    assert same(CLASSES[kind].from_pretrained(folder), build(kind))
    assert same(AutoModel.from_pretrained(folder), build(kind))


@pytest.mark.parametrize(("method", "ensemble"), [*((m, 1) for m in METHODS), ("irp", 3), ("procrustes", 2)])
def test_every_method_and_ensemble_round_trips(method, ensemble, tmp_path):
    bridge = build("bridge", method=method, ensemble=ensemble)
    bridge.save_pretrained(tmp_path)
    loaded = LatentBridge.from_pretrained(tmp_path)
    assert same(loaded, bridge) and loaded.config.method == method and loaded.config.source == SOURCE


def test_float64_and_sharded_saves_round_trip(tmp_path):
    g = torch.Generator().manual_seed(3)
    bridge = LatentBridge.fit(
        torch.randn(40, 12, generator=g, dtype=torch.float64), torch.randn(40, 8, generator=g)
    )
    bridge.save_pretrained(tmp_path / "sharded", max_shard_size="1KB")
    assert len(list((tmp_path / "sharded").glob("model-*.safetensors"))) > 1
    loaded = LatentBridge.from_pretrained(tmp_path / "sharded")
    assert loaded.dtype == torch.float64 and same(loaded, bridge)
    bridge.save_pretrained(tmp_path / "sharded")  # one file now: the earlier save's shards are gone
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    stitched = StitchedModel.from_parts(bridge, build("head"))
    stitched.save_pretrained(tmp_path / "stitched")
    assert same(StitchedModel.from_pretrained(tmp_path / "stitched"), stitched)


def test_loading_never_changes_the_default_dtype_other_threads_see(tmp_path):
    """transformers builds models under a process-global torch.set_default_dtype; ours must not."""
    g = torch.Generator().manual_seed(4)
    bridge = LatentBridge.fit(
        torch.randn(40, 6, generator=g, dtype=torch.float64), torch.randn(40, 5, generator=g)
    )
    StitchedModel.from_parts(
        bridge, ClassificationHead.fit(torch.randn(40, 5), torch.arange(40) % 2)
    ).save_pretrained(tmp_path / "stitched")
    seen, stop = set(), threading.Event()

    def create_tensors():
        while not stop.is_set():
            seen.add(torch.ones(1).dtype)

    watcher = threading.Thread(target=create_tensors)
    watcher.start()
    try:
        for _ in range(10):
            assert StitchedModel.from_pretrained(tmp_path / "stitched").bridge.dtype == torch.float64
    finally:
        stop.set()
        watcher.join()
    assert seen == {torch.float32}


@pytest.mark.parametrize("kind", KINDS)
def test_subfolder_of_a_local_folder(kind, saved, tmp_path):
    copy_of(saved, kind, tmp_path / "parent")
    assert same(CLASSES[kind].from_pretrained(tmp_path / "parent", subfolder=kind), build(kind))
    with pytest.raises(OSError):
        CLASSES[kind].from_pretrained(tmp_path / "parent")


def test_every_kind_from_the_hub_by_revision_and_subfolder(hub_server, saved, tmp_path):
    """One repo, one subfolder per kind; each loads by repo id, subfolder and the pinned commit."""
    repo = f"{HUB_USER}/contract-{uuid.uuid4().hex[:8]}"
    api = HfApi()
    api.create_repo(repo)
    shas = {
        kind: api.upload_folder(repo_id=repo, folder_path=saved[kind], path_in_repo=kind).oid
        for kind in KINDS
    }
    for kind in KINDS:
        loaded = CLASSES[kind].from_pretrained(repo, subfolder=kind, revision=shas[kind], cache_dir=tmp_path)
        assert same(loaded, build(kind))
    with pytest.raises(OSError):  # at the first commit only the bridge existed
        ClassificationHead.from_pretrained(
            repo, subfolder="head", revision=shas["bridge"], cache_dir=tmp_path
        )


# ------------------------------------------------------------------------ stored tensors vs config.json
def rewrite(folder: Path, change: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]) -> None:
    path = folder / "model.safetensors"
    save_file(change(load_file(str(path))), str(path), metadata={"format": "pt"})


def first_float(tensors: dict[str, torch.Tensor]) -> str:
    return sorted(k for k, v in tensors.items() if v.is_floating_point())[0]


FAULTS = {
    "missing": lambda t: {k: v for k, v in t.items() if k != first_float(t)},
    "unexpected": lambda t: {**t, "stowaway": torch.zeros(2)},
    "shape": lambda t: {**t, first_float(t): t[first_float(t)].flatten()[:-1].contiguous()},
    "nan": lambda t: {**t, first_float(t): torch.full_like(t[first_float(t)], float("nan"))},
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("kind", KINDS)
def test_stored_tensors_must_match_the_config(kind, fault, saved, tmp_path):
    folder = copy_of(saved, kind, tmp_path)
    rewrite(folder, FAULTS[fault])
    with pytest.raises(CheckpointError, match="force_download=True"):  # and it says what to do
        CLASSES[kind].from_pretrained(folder)


INVARIANTS = {
    "negative output_norm": ("bridge", "output_norm", lambda t: -t.abs() - 1, "output_norm is negative"),
    "Inf anchors": (
        "bridge",
        "target_anchors",
        lambda t: t.fill_(float("inf")),
        "'target_anchors' holds NaN or Inf",
    ),
    "altered anchor mean": ("anchor_space", "mean", lambda t: t + 1, "statistics do not match"),
    "stitched bridge norm": (
        "stitched",
        "bridge.output_norm",
        lambda t: -t.abs() - 1,
        r"\(bridge\): output_norm",
    ),
    "stitched NaN head bias": (
        "stitched",
        "head.bias",
        lambda t: t.fill_(float("nan")),
        "'head.bias' holds NaN",
    ),
}


@pytest.mark.parametrize("case", INVARIANTS)
def test_loaded_values_must_keep_the_invariants_of_the_maths(case, saved, tmp_path):
    kind, name, change, message = INVARIANTS[case]
    folder = copy_of(saved, kind, tmp_path)
    rewrite(folder, lambda t: {**t, name: change(t[name].clone()).contiguous()})
    with pytest.raises(CheckpointError, match=message):
        CLASSES[kind].from_pretrained(folder)


def test_ensemble_member_indices_must_index_the_anchors(tmp_path):
    build("bridge", ensemble=3).save_pretrained(tmp_path)
    rewrite(tmp_path, lambda t: {**t, "member_indices": t["member_indices"] + 1000})
    with pytest.raises(CheckpointError, match="member_indices are not distinct anchor rows"):
        LatentBridge.from_pretrained(tmp_path)


#: Config edits that would allocate terabytes if anything were built before checking.
CRAFTED = {
    "bridge ensemble 2**31": ("bridge", {"ensemble": 2**31}, "ensemble must be"),
    "bridge source_dim 10**9": ("bridge", {"source_dim": 10**9}, "source_dim must be"),
    "bridge petabyte maps": (
        "bridge",
        {"source_dim": 2**20, "target_dim": 2**20, "ensemble": 1024},
        "size mismatch|MISMATCH|ignore_mismatched",
    ),
    "bridge dtype int64": ("bridge", {"dtype": "int64"}, "floating torch dtype"),
    "head one label": ("head", {"id2label": {"0": "x"}}, "number of classes"),
    "stitched head of 10**6 dims": (
        "stitched",
        {"head_config": {"input_dim": 10**6}},
        "head takes 1000000-dimensional",
    ),
    "another model type": ("bridge", {"model_type": "bert"}, "config of a 'bert' model"),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_configs_are_refused_before_anything_is_allocated(case, saved, tmp_path):
    kind, edit, message = CRAFTED[case]
    folder = copy_of(saved, kind, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    for key, value in edit.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key != "id2label" else value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        CLASSES[kind].from_pretrained(folder)


# ------------------------------------------------------------------------------- saving beside the user
def user_files(folder: Path) -> dict[str, bytes]:
    package = ("config.json", "model.safetensors", "README.md")
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in package
    }


def with_user_files(folder: Path) -> dict[str, bytes]:
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "data" / "deeper").mkdir(parents=True)
    (folder / "data" / "deeper" / "blob.bin").write_bytes(os.urandom(3000))
    (folder / "link-to-notes").symlink_to("notes.txt")
    return user_files(folder)


def hidden_siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_a_save_replaces_its_own_files_and_keeps_the_users(tmp_path):
    folder = tmp_path / "bridge"
    build("bridge").save_pretrained(folder)
    mine = with_user_files(folder)
    build("bridge", seed=1).save_pretrained(folder)
    assert same(LatentBridge.from_pretrained(folder), build("bridge", seed=1))
    assert user_files(folder) == mine and (folder / "link-to-notes").is_symlink()
    assert hidden_siblings(folder) == []
    (folder / "README.md").write_text("my own card\n")  # no marker: the user's
    build("bridge").save_pretrained(folder)
    assert (folder / "README.md").read_text() == "my own card\n"
    build("bridge").save_pretrained(folder, overwrite_model_card=True)
    assert CARD_MARKER in (folder / "README.md").read_text()


@pytest.mark.parametrize("name", ["config.json", "modeling_latent_bridge.py"])
def test_a_file_of_the_users_is_never_replaced_without_overwrite(name, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / name).write_text('{"model_type": "bert"}' if name == "config.json" else "# mine\n")
    with pytest.raises(OutputExistsError, match=f"would replace {name}"):
        build("bridge").save_pretrained(folder, remote_code=True)
    assert sorted(p.name for p in folder.iterdir()) == [name] and hidden_siblings(folder) == []
    build("bridge").save_pretrained(folder, remote_code=True, overwrite=True)
    assert same(LatentBridge.from_pretrained(folder), build("bridge"))
    (tmp_path / "a-file").write_text("mine")
    with pytest.raises(OutputExistsError, match="is a file"):
        build("bridge").save_pretrained(tmp_path / "a-file")
    assert (tmp_path / "a-file").read_text() == "mine"


def test_a_new_folder_gets_the_usual_permissions_and_a_symlink_is_saved_through(tmp_path):
    build("bridge").save_pretrained(tmp_path / "new")
    umask = os.umask(0)  # the test reads the umask; the library never sets it
    os.umask(umask)
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "new" / "config.json").stat().st_mode & 0o777 == 0o666 & ~umask
    (tmp_path / "link").symlink_to(tmp_path / "new")
    build("bridge", seed=1).save_pretrained(tmp_path / "link")
    assert (tmp_path / "link").is_symlink() and same(
        LatentBridge.from_pretrained(tmp_path / "new"), build("bridge", seed=1)
    )


def test_concurrent_saves_leave_one_whole_save(tmp_path):
    folder = tmp_path / "bridge"
    build("bridge").save_pretrained(folder)
    mine = with_user_files(folder)
    candidates = [build("bridge", seed=s) for s in range(10, 14)]
    refused = []

    def save(model):
        for _ in range(2):
            try:
                model.save_pretrained(folder)
            except OSError as error:  # a race may refuse a save, never corrupt one
                refused.append(error)

    threads = [threading.Thread(target=save, args=(m,)) for m in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert any(same(LatentBridge.from_pretrained(folder), m) for m in candidates)
    assert user_files(folder) == mine and len(refused) < 8


CHILD = textwrap.dedent(
    """
    import resource, sys, time
    import torch
    import transformers.modeling_utils as modeling_utils
    from hf_latent_bridge import LatentBridge

    folder, point = sys.argv[1], sys.argv[2]
    g = torch.Generator().manual_seed(2)
    new = LatentBridge.fit(torch.randn(60, 16, generator=g), torch.randn(60, 12, generator=g), ridge=0.1)
    if point == "weights":  # killed when half of model.safetensors is on disk
        real = modeling_utils.safe_save_file
        def half_then_wait(tensors, filename, metadata=None):
            real(tensors, filename, metadata=metadata)
            data = open(filename, "rb").read()
            open(filename, "wb").write(data[: len(data) // 2])
            print("READY", flush=True)
            time.sleep(120)
        modeling_utils.safe_save_file = half_then_wait
    else:  # a real failing write: files may not grow past 6 kB
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, resource.RLIM_INFINITY))
        print("READY", flush=True)
    new.save_pretrained(folder)
    """
)


def test_a_killed_or_failing_save_keeps_the_previous_one_whole(tmp_path):
    """SIGKILL in the middle of the weights, and a real failing write (RLIMIT_FSIZE, as a full disk), in
    real processes: the folder still holds the previous save and the user's files."""
    (tmp_path / "child.py").write_text(CHILD)
    g = torch.Generator().manual_seed(1)
    first = LatentBridge.fit(torch.randn(60, 16, generator=g), torch.randn(60, 12, generator=g), ridge=0.1)
    for point in ("weights", "disk-full"):
        folder = tmp_path / point / "bridge"
        first.save_pretrained(folder)
        mine = with_user_files(folder)
        child = subprocess.Popen(
            [sys.executable, str(tmp_path / "child.py"), str(folder), point],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        ready, _, _ = select.select([child.stdout], [], [], 240)
        assert ready and child.stdout.readline().strip() == "READY", child.stderr.read()[-2000:]
        if point == "weights":
            child.send_signal(signal.SIGKILL)
        child.wait(timeout=240)
        assert child.returncode == (-signal.SIGKILL if point == "weights" else 1)
        if point == "disk-full":
            assert "File too large" in child.stderr.read()
        assert same(LatentBridge.from_pretrained(folder), first) and user_files(folder) == mine
