"""One artifact contract: bridge, anchor space, head and stitched model save, load and refuse alike.

Every kind is saved with ``save_pretrained`` (config.json + model.safetensors + its own card), loaded
with ``from_pretrained`` from a folder, a subfolder or a Hub repo at a revision, and refused with a
``CheckpointError`` when its tensors disagree with its config (checked on the file headers before
anything is loaded), when a loaded value breaks the maths, or when its config is crafted to exhaust
memory or time.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from transformers import AutoModel

from hf_latent_bridge import (
    AnchorSet,
    AnchorSpace,
    CheckpointError,
    ClassificationHead,
    EncoderRef,
    LatentBridge,
    StitchedModel,
)
from hf_latent_bridge.errors import LatentBridgeError
from hf_latent_bridge.models.cards import CARD_MARKER
from tests.conftest import HUB_USER

SOURCE = EncoderRef("toy/source", revision="a" * 40, pooling="mean", modality="text")
TARGET = EncoderRef("toy/target", revision="b" * 40, pooling="mean", modality="text")
ANCHORS = AnchorSet("toy/anchors", tuple(range(40)), revision="c" * 40, split="train")
KINDS = ("bridge", "anchor_space", "head", "stitched")
CLASSES = {
    "bridge": LatentBridge,
    "anchor_space": AnchorSpace,
    "head": ClassificationHead,
    "stitched": StitchedModel,
}
PROBE = torch.linspace(-2, 2, 3 * 12).reshape(3, 12)


@functools.cache
def build(kind: str, seed: int = 0, ensemble: int = 1):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(40, 12, generator=g), torch.randn(40, 8, generator=g)
    bridge = LatentBridge.fit(
        x, y, source_encoder=SOURCE, target_encoder=TARGET, anchor_set=ANCHORS, ensemble=ensemble, ridge=0.1
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
        return model.translate(PROBE)
    if isinstance(model, StitchedModel):
        return model.logits_from_embeddings(PROBE)
    if isinstance(model, ClassificationHead):
        return model.logits(PROBE[:, :8])
    return model.source_factor()


def assert_same(loaded, original) -> None:
    assert type(loaded) is type(original)
    for name, tensor in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert torch.equal(output(loaded), output(original))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("artifacts")
    for kind in KINDS:
        build(kind).save_pretrained(root / kind)
    return {kind: root / kind for kind in KINDS}


def copy_of(saved: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    folder = tmp_path / kind
    shutil.copytree(saved[kind], folder)
    return folder


# ------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_saves_with_its_card_and_loads_bit_for_bit(kind, saved):
    folder = saved[kind]
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md"}
    original = build(kind)
    card = ModelCard.load(folder / "README.md")
    assert CARD_MARKER in card.text and card.data.library_name == "hf_latent_bridge"
    assert card.text == original.model_card(kind).text  # a local save names its folder in the code
    loaded = CLASSES[kind].from_pretrained(folder)
    assert_same(loaded, original)
    assert isinstance(AutoModel.from_pretrained(folder), CLASSES[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_subfolder_of_a_local_folder(kind, saved, tmp_path):
    copy_of(saved, kind, tmp_path / "parent")
    original = build(kind)
    assert_same(CLASSES[kind].from_pretrained(tmp_path / "parent", subfolder=kind), original)
    with pytest.raises(CheckpointError, match="has no subfolder 'elsewhere'"):
        CLASSES[kind].from_pretrained(tmp_path / "parent", subfolder="elsewhere")
    with pytest.raises(CheckpointError, match="has no config.json"):
        CLASSES[kind].from_pretrained(tmp_path / "parent")


def test_every_kind_from_the_hub_by_revision_and_subfolder(hub_server, saved, tmp_path):
    """One repo, one subfolder per kind; each loads by repo id, subfolder and the pinned commit."""
    repo = f"{HUB_USER}/contract-{uuid.uuid4().hex[:8]}"
    api = HfApi()
    api.create_repo(repo)
    shas = {}
    for kind in KINDS:
        shas[kind] = api.upload_folder(repo_id=repo, folder_path=saved[kind], path_in_repo=kind).oid
    for kind in KINDS:
        original = build(kind)
        loaded = CLASSES[kind].from_pretrained(repo, subfolder=kind, revision=shas[kind], cache_dir=tmp_path)
        assert_same(loaded, original)
        assert loaded.config._commit_hash == shas[kind]
    with pytest.raises(CheckpointError, match=f"at commit {shas['bridge']} has no subfolder 'head'"):
        LatentBridge.from_pretrained(repo, subfolder="head", revision=shas["bridge"], cache_dir=tmp_path)
    # Each kind also pushes on its own, with its card, and loads back at the pushed commit.
    head = build("head")
    sha = head.push_to_hub(f"{repo}-head").oid
    assert_same(ClassificationHead.from_pretrained(f"{repo}-head", revision=sha, cache_dir=tmp_path), head)
    assert (
        "2 classes" not in ModelCard.load(f"{repo}-head").text
        and "3 classes" in ModelCard.load(f"{repo}-head").text
    )


def test_a_missing_local_folder_is_named_as_such(tmp_path):
    with pytest.raises(CheckpointError, match="neither a folder on this machine nor a Hub repo id"):
        LatentBridge.from_pretrained(tmp_path / "never-saved")
    with pytest.raises(CheckpointError, match="neither a folder"):
        LatentBridge.from_pretrained("./relative/never-saved")


# ------------------------------------------------------------------------ stored tensors vs config.json
def rewrite(folder: Path, change: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]) -> None:
    path = folder / "model.safetensors"
    save_file(change(load_file(str(path))), str(path), metadata={"format": "pt"})


def first_float(tensors: dict[str, torch.Tensor]) -> str:
    return sorted(k for k, v in tensors.items() if v.is_floating_point())[0]


FAULTS = {
    "missing": (lambda t: {k: v for k, v in t.items() if k != first_float(t)}, "missing: "),
    "unexpected": (lambda t: {**t, "stowaway": torch.zeros(2)}, "unexpected: stowaway"),
    "shape": (
        lambda t: {**t, first_float(t): t[first_float(t)].flatten()[:-1].contiguous()},
        "where config.json implies F32",
    ),
    "dtype": (lambda t: {**t, first_float(t): t[first_float(t)].double()}, r"is F64\["),
    "nan": (
        lambda t: {**t, first_float(t): torch.full_like(t[first_float(t)], float("nan"))},
        "holds NaN or Inf",
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("kind", KINDS)
def test_stored_tensors_must_match_the_config(kind, fault, saved, tmp_path):
    folder = copy_of(saved, kind, tmp_path)
    change, message = FAULTS[fault]
    rewrite(folder, change)
    with pytest.raises(CheckpointError, match=message) as error:
        CLASSES[kind].from_pretrained(folder)
    assert "force_download=True" in str(error.value)  # and says what to do


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "the tensors need"),
        (lambda b: b + b"\0" * 16, "the tensors need"),
        (lambda b: b[:4], "shorter than the 8-byte header length"),
        (lambda b: (10**12).to_bytes(8, "little") + b[8:], "does not fit"),
        (lambda b: b[:8] + b"{not json" + b[17:], "header is not JSON"),
        (
            lambda b: (
                b[:8]
                + b"[1, 2, 3]".ljust(int.from_bytes(b[:8], "little"))
                + b[8 + int.from_bytes(b[:8], "little") :]
            ),
            "not a JSON object",
        ),
    ],
    ids=["truncated", "padded", "stub", "huge-header", "garbage-header", "list-header"],
)
def test_corrupt_safetensors_files_are_refused_by_their_header(damage, message, saved, tmp_path):
    folder = copy_of(saved, "bridge", tmp_path)
    path = folder / "model.safetensors"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=message):
        LatentBridge.from_pretrained(folder)


def test_sharded_checkpoints_are_checked_shard_by_shard(tmp_path):
    bridge = build("bridge")
    bridge.save_pretrained(tmp_path / "sharded", max_shard_size="1KB")
    shards = sorted(p.name for p in (tmp_path / "sharded").glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    assert_same(LatentBridge.from_pretrained(tmp_path / "sharded"), bridge)
    index_path = tmp_path / "sharded" / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"]["weight"] = "../../elsewhere.safetensors"
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="not a shard of this folder"):
        LatentBridge.from_pretrained(tmp_path / "sharded")


# ---------------------------------------------------------------------- loaded values the maths refuses
INVARIANTS = {
    "negative output_norm": (
        "bridge",
        "output_norm",
        lambda t: -t.abs() - 1,
        "output_norm holds a negative value",
    ),
    "NaN output_shift": (
        "bridge",
        "output_shift",
        lambda t: t.fill_(float("nan")),
        "'output_shift' holds NaN",
    ),
    "Inf anchors": (
        "bridge",
        "target_anchors",
        lambda t: t.fill_(float("inf")),
        "'target_anchors' holds NaN or Inf",
    ),
    "altered anchor mean": (
        "anchor_space",
        "mean",
        lambda t: t + 1,
        "statistics do not match the stored anchors",
    ),
    "NaN head weight": ("head", "weight", lambda t: t.fill_(float("nan")), "'weight' holds NaN"),
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


# ---------------------------------------------------------------------------------------- crafted configs
def nested(key: str, **values) -> Callable[[dict], None]:
    return lambda config: config[key].update(values)


def fields(**values) -> Callable[[dict], None]:
    return lambda config: config.update(values)


#: Config edits that would allocate terabytes or loop for hours if anything were built before checking.
CRAFTED = {
    "bridge ensemble 2**31": ("bridge", fields(ensemble=2**31), "ensemble must be at most"),
    "bridge source_dim 10**9": ("bridge", fields(source_dim=10**9), "source_dim must be at most"),
    "bridge petabyte maps": (
        "bridge",
        fields(source_dim=2**20, target_dim=2**20, ensemble=1024),
        r"weight is F32\[1, 12, 8\] where config.json implies F32\[1024, 1048576, 1048576\]",
    ),
    "bridge anchors 2**24": ("bridge", fields(num_anchors=2**24), "source_anchors is F32"),
    "bridge dtype int64": ("bridge", fields(dtype="int64"), "records dtype"),
    "anchor space dim 2**20": ("anchor_space", fields(dim=2**20), "anchors is F32"),
    "head input_dim 10**6": ("head", fields(input_dim=10**6), r"implies F32\[3, 1000000\]"),
    "head 10**5 labels": (
        "head",
        fields(id2label={str(i): "x" for i in range(10**5)}),
        r"implies F32\[100000, 8\]",
    ),
    "head one label": ("head", fields(id2label={"0": "x"}), "at least 2 labels"),
    "stitched head of 10**6 dims": (
        "stitched",
        nested("head", input_dim=10**6),
        "head takes 1000000-dimensional",
    ),
    "stitched bridge ensemble": ("stitched", nested("bridge", ensemble=10**9), "ensemble must be at most"),
    "stitched bridge dims": (
        "stitched",
        nested("bridge", source_dim=2**20, target_dim=2**20),
        "head takes 8-dim",
    ),
    "another model type": ("bridge", fields(model_type="bert"), "holds a 'bert' model"),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_configs_fail_fast_before_any_allocation(case, saved, tmp_path):
    kind, edit, message = CRAFTED[case]
    folder = copy_of(saved, kind, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=message):
        CLASSES[kind].from_pretrained(folder)
    # Not asserted (timings belong in benchmarks/), but shown with -s: milliseconds, not minutes.
    print(f"{case}: refused in {1000 * (time.perf_counter() - started):.1f} ms")


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_any_config_edit_loads_or_is_refused_cleanly(kind, data, saved, tmp_path_factory):
    """Property: whatever one field of config.json is changed to, loading either gives a model with
    finite outputs or raises CheckpointError, never another exception."""
    folder = copy_of(saved, kind, tmp_path_factory.mktemp("edit"))
    config = json.loads((folder / "config.json").read_text())
    key = data.draw(st.sampled_from(sorted(config)), label="field")
    config[key] = data.draw(JSON_VALUES, label="value")
    (folder / "config.json").write_text(json.dumps(config))
    try:
        model = CLASSES[kind].from_pretrained(folder)
    except CheckpointError:
        return
    assert_finite_or_refused(model)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, 10**6), value=st.integers(0, 255), cut=st.booleans())
def test_any_damaged_byte_loads_or_is_refused_cleanly(position, value, cut, saved, tmp_path_factory):
    """Property: a flipped or cut safetensors file loads with finite outputs or raises CheckpointError."""
    folder = copy_of(saved, "stitched", tmp_path_factory.mktemp("bytes"))
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    position %= len(data)
    if cut:
        del data[position:]
    else:
        data[position] = value
    path.write_bytes(bytes(data))
    try:
        model = StitchedModel.from_pretrained(folder)
    except CheckpointError:
        return
    assert_finite_or_refused(model)


def assert_finite_or_refused(model) -> None:
    """Absurd but finite stored values may overflow on some input: then the package says so."""
    try:
        result = output(model)
    except LatentBridgeError as error:
        assert "overflow" in str(error)
        return
    assert bool(torch.isfinite(result).all())
