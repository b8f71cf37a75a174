"""Index migration: stored vectors translated chunk by chunk, written atomically; faiss outputs and the
faiss pre-transform; a dataset column; every bad input refused before any output exists; two processes
write the bytes of one."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import faiss
import numpy as np
import pytest
import torch

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.errors import BridgeInputError, IncompatibleEncoderError, OutputExistsError
from hf_latent_bridge.retrieval.migration import (
    prefix_transform,
    translate_dataset,
    translate_vectors,
    write_faiss_index,
)

D_SOURCE, D_TARGET, N, CHUNK = 8, 12, 1000, 300  # CHUNK does not divide N


def _anchors(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, D_SOURCE, generator=g)
    y = x @ torch.randn(D_SOURCE, D_TARGET, generator=g) + 0.1 * torch.randn(64, D_TARGET, generator=g)
    return x, y


@pytest.fixture(scope="module")
def bridge() -> LatentBridge:
    return LatentBridge.fit(*_anchors(), method="procrustes", source_encoder="org/old-encoder")


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((N, D_SOURCE)).astype(np.float32)


def _chunked(bridge: LatentBridge, v: np.ndarray, chunk: int = CHUNK, normalize: bool = False) -> np.ndarray:
    """``bridge.translate`` chunk by chunk: what translate_vectors promises, bit for bit."""
    out = np.concatenate([bridge.translate(v[i : i + chunk]) for i in range(0, len(v), chunk)])
    return _unit(out) if normalize else out.astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return torch.nn.functional.normalize(torch.from_numpy(np.asarray(x, np.float32)), dim=1).numpy()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _as_input(kind: str, v: np.ndarray, folder: Path):
    if kind == "array":
        return v
    if kind == "npy":
        np.save(folder / "in.npy", v)
        return folder / "in.npy"
    if kind == "memmap":
        np.save(folder / "in.npy", v)
        return np.load(folder / "in.npy", mmap_mode="r")
    index = faiss.IndexFlatL2(v.shape[1])
    index.add(v)
    if kind == "index":
        return index
    faiss.write_index(index, str(folder / "in.faiss"))
    return folder / "in.faiss"


@pytest.mark.parametrize("kind", ["npy", "array", "memmap", "index", "index-file"])
def test_translation_equals_the_bridge_for_every_input(kind, bridge, vectors, tmp_path):
    source = _as_input(kind, vectors, tmp_path)
    before = _listing(tmp_path)
    out = translate_vectors(bridge, source, tmp_path / "out.npy", chunk_size=CHUNK)
    assert out == tmp_path / "out.npy"
    result = np.load(out)
    assert result.dtype == np.float32 and result.shape == (N, D_TARGET)
    np.testing.assert_array_equal(result, _chunked(bridge, vectors))
    np.testing.assert_allclose(result, bridge.translate(vectors), rtol=1e-5, atol=1e-5)
    assert _listing(tmp_path) == sorted([*before, "out.npy"])  # nothing hidden left behind


@pytest.mark.parametrize("chunk", [256, CHUNK])  # 256 rows of 12 floats are 3 blocks: direct writes
def test_direct_and_cached_writes_give_the_same_npy(chunk, bridge, vectors, tmp_path):
    from hf_latent_bridge.retrieval.migration import BLOCK, _RowWriter

    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    with _RowWriter(probe, direct=chunk * D_TARGET * 4 % BLOCK == 0) as writer:
        if chunk == 256 and not writer.direct:
            pytest.skip(f"the file system of {tmp_path} refuses O_DIRECT")
        assert writer.direct == (chunk == 256)  # unaligned chunks go through the OS's cache
    out = translate_vectors(bridge, vectors, tmp_path / "out.npy", chunk_size=chunk)
    with open(out, "rb") as file:  # a standard .npy whose rows start on a block boundary
        version = np.lib.format.read_magic(file)
        assert np.lib.format.read_array_header_1_0(file) == ((N, D_TARGET), False, np.dtype("<f4"))
        assert version == (1, 0) and file.tell() == BLOCK
    assert out.stat().st_size == BLOCK + N * D_TARGET * 4  # the last block's padding cut off
    np.testing.assert_array_equal(np.load(out), _chunked(bridge, vectors, chunk))


def test_normalised_rows_and_other_dtypes(bridge, vectors, tmp_path):
    out = translate_vectors(bridge, vectors, tmp_path / "unit.npy", chunk_size=CHUNK, normalize=True)
    np.testing.assert_array_equal(np.load(out), _chunked(bridge, vectors, normalize=True))
    wide = vectors.astype(np.float64)
    out = translate_vectors(bridge, wide, tmp_path / "f64.npy", chunk_size=CHUNK)
    np.testing.assert_array_equal(np.load(out), _chunked(bridge, wide))
    swapped = vectors.astype(">f4")  # big-endian on disk
    np.save(tmp_path / "be.npy", swapped)
    out = translate_vectors(bridge, tmp_path / "be.npy", tmp_path / "be-out.npy", chunk_size=CHUNK)
    np.testing.assert_array_equal(np.load(out), _chunked(bridge, vectors))
    np.save(tmp_path / "f.npy", np.asfortranarray(vectors))  # column-major on disk
    out = translate_vectors(bridge, tmp_path / "f.npy", tmp_path / "f-out.npy", chunk_size=CHUNK)
    np.testing.assert_array_equal(np.load(out), _chunked(bridge, vectors))


def test_a_nan_midway_leaves_no_output_and_the_input_as_it_was(bridge, vectors, tmp_path):
    bad = vectors.copy()
    bad[750, 3] = np.nan  # in the third chunk: two chunks were written when it is found
    np.save(tmp_path / "in.npy", bad)
    digest = _digest(tmp_path / "in.npy")
    with pytest.raises(BridgeInputError, match=r"row 750 of the vectors in .* NaN or Inf; repair or drop"):
        translate_vectors(bridge, tmp_path / "in.npy", tmp_path / "out.npy", chunk_size=CHUNK)
    assert _listing(tmp_path) == ["in.npy"]
    # an earlier output survives a failed overwrite whole
    np.save(tmp_path / "out.npy", np.zeros(3))
    previous = _digest(tmp_path / "out.npy")
    with pytest.raises(BridgeInputError, match="row 750"):
        translate_vectors(bridge, tmp_path / "in.npy", tmp_path / "out.npy", chunk_size=CHUNK, overwrite=True)
    assert _digest(tmp_path / "out.npy") == previous and _listing(tmp_path) == ["in.npy", "out.npy"]
    assert _digest(tmp_path / "in.npy") == digest
    with pytest.raises(BridgeInputError, match="row 750 of the vectors of the index"):
        translate_vectors(bridge, _as_input("index", bad, tmp_path), tmp_path / "x.faiss", chunk_size=CHUNK)
    assert _listing(tmp_path) == ["in.npy", "out.npy"]


def test_an_existing_output_is_replaced_only_with_overwrite(bridge, vectors, tmp_path):
    np.save(tmp_path / "in.npy", vectors)
    digest = _digest(tmp_path / "in.npy")
    (tmp_path / "out.npy").write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="exists; pass overwrite"):
        translate_vectors(bridge, tmp_path / "in.npy", tmp_path / "out.npy")
    assert (tmp_path / "out.npy").read_bytes() == b"mine"
    translate_vectors(bridge, tmp_path / "in.npy", tmp_path / "out.npy", overwrite=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), _chunked(bridge, vectors, chunk=65536))
    assert _digest(tmp_path / "in.npy") == digest
    for same in (tmp_path / "in.npy", tmp_path / "." / "in.npy"):  # never the input, even with overwrite
        with pytest.raises(OutputExistsError, match="is the input file; write to another path"):
            translate_vectors(bridge, tmp_path / "in.npy", same, overwrite=True)
    with pytest.raises(OutputExistsError, match="is the input file"):
        translate_vectors(
            bridge, np.load(tmp_path / "in.npy", mmap_mode="r"), tmp_path / "in.npy", overwrite=True
        )
    assert _digest(tmp_path / "in.npy") == digest


def test_bad_inputs_are_refused_before_any_output(bridge, vectors, tmp_path):
    out = tmp_path / "out.npy"
    np.save(tmp_path / "wide.npy", np.ones((4, 768), np.float32))
    cases = [
        (tmp_path / "wide.npy", out, {}, IncompatibleEncoderError,
         r"have 768 columns but the bridge translates 8-dimensional embeddings of org/old-encoder; pass vectors "
         r"embedded by org/old-encoder, or fit a bridge"),
        (np.ones((4, D_TARGET), np.float32), out, {}, IncompatibleEncoderError, "use the bridge fitted the other way"),
        (vectors[0], out, {}, BridgeInputError, r"must be a 2-D \(n, d\) matrix, got shape \(8,\); reshape"),
        (vectors.astype(np.int64), out, {}, BridgeInputError, r"int64 values.*astype\(np.float32\)"),
        (vectors[:0], out, {}, BridgeInputError, "have no rows; pass at least one vector"),
        (tmp_path / "missing.npy", out, {}, BridgeInputError, "is not a file; pass the path of a .npy file"),
        (vectors, tmp_path / "out.txt", {}, BridgeInputError, r"must end in .npy \(float32 rows\) or .faiss"),
        (vectors, tmp_path / "no" / "out.npy", {}, BridgeInputError, "does not exist; create it first"),
        (vectors, out, {"metric": "ip"}, BridgeInputError, "applies to faiss outputs only; drop it"),
        (vectors, tmp_path / "o.faiss", {"metric": "dot"}, BridgeInputError, "metric must be one of 'cosine'"),
        (vectors, out, {"chunk_size": 0}, BridgeInputError, "chunk_size must be an integer >= 1"),
        ("not a bridge", out, {"bridge": object()}, BridgeInputError, "bridge must be a LatentBridge, got object; fit one"),
        ([[1.0] * D_SOURCE], out, {}, BridgeInputError, "must be a .npy path, a numpy array or a faiss index"),
    ]  # fmt: skip
    for source, target, options, error, message in cases:
        with pytest.raises(error, match=message):
            translate_vectors(options.pop("bridge", bridge), source, target, **options)
    assert _listing(tmp_path) == ["wide.npy"]


def test_faiss_inputs_that_cannot_be_migrated(bridge, vectors, tmp_path):
    mapped = faiss.IndexIDMap(faiss.IndexFlatIP(D_SOURCE))
    mapped.add_with_ids(vectors[:5], np.arange(10, 15))
    l1 = faiss.IndexFlat(D_SOURCE, faiss.METRIC_L1)
    l1.add(vectors)
    shards = faiss.IndexShards(D_SOURCE)  # cannot return single vectors
    shards.add_shard(faiss.IndexFlatL2(D_SOURCE))
    shards.add(vectors)
    (tmp_path / "junk.faiss").write_bytes(b"not an index")
    cases = [
        (mapped, "maps its own ids, which a translated copy would lose; translate its sub-index"),
        (l1, "uses METRIC_L1; only inner-product and L2 indexes can be migrated"),
        (faiss.IndexFlatL2(D_SOURCE), "is empty; add vectors to it first"),
        (
            shards,
            r"\(IndexShards\) cannot return its stored vectors; translate the vectors it was built from",
        ),
        (tmp_path / "junk.faiss", "is not a faiss index .*; pass a file written by faiss.write_index"),
    ]
    for source, message in cases:
        with pytest.raises(BridgeInputError, match=message):
            translate_vectors(bridge, source, tmp_path / "out.faiss")
    assert _listing(tmp_path) == ["junk.faiss"]


def _top_k(queries: np.ndarray, rows: np.ndarray, k: int, metric: str) -> np.ndarray:
    scores = -((queries[:, None] - rows[None]) ** 2).sum(-1) if metric == "l2" else queries @ rows.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_faiss_outputs_search_like_brute_force(bridge, vectors, tmp_path):
    queries = np.random.default_rng(1).standard_normal((20, D_TARGET)).astype(np.float32)
    translated = _chunked(bridge, vectors)
    unit_input = faiss.IndexFlatIP(D_SOURCE)
    unit_input.add(_unit(vectors))
    raw_ip, raw_l2 = faiss.IndexFlatIP(D_SOURCE), faiss.IndexFlatL2(D_SOURCE)
    raw_ip.add(vectors)
    raw_l2.add(vectors)
    cases = {  # input -> (the metric the output keeps, the rows it holds)
        "npy-default": (vectors, "cosine", _unit(translated)),
        "cosine-index": (unit_input, "cosine", _unit(_chunked(bridge, _unit(vectors)))),
        "ip-index": (raw_ip, "ip", translated),
        "l2-index": (raw_l2, "l2", translated),
    }
    for name, (source, metric, rows) in cases.items():
        out = translate_vectors(bridge, source, tmp_path / f"{name}.faiss", chunk_size=CHUNK)
        index = faiss.read_index(str(out))
        assert index.ntotal == N and index.d == D_TARGET
        assert index.metric_type == (faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)
        np.testing.assert_allclose(index.reconstruct_n(0, N), rows, rtol=1e-6, atol=1e-6)
        q = _unit(queries) if metric == "cosine" else queries
        np.testing.assert_array_equal(index.search(q, 10)[1], _top_k(q, rows, 10, metric))
    np.save(tmp_path / "t.npy", translated)
    for metric in ("cosine", "ip", "l2"):
        out = write_faiss_index(
            tmp_path / "t.npy", tmp_path / f"w-{metric}.index", metric=metric, chunk_size=CHUNK
        )
        rows = _unit(translated) if metric == "cosine" else translated
        q = _unit(queries) if metric == "cosine" else queries
        np.testing.assert_array_equal(
            faiss.read_index(str(out)).search(q, 10)[1], _top_k(q, rows, 10, metric)
        )
    with pytest.raises(BridgeInputError, match=r"must end in .faiss / .index"):
        write_faiss_index(translated, tmp_path / "x.npy")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_prefix_transform_searches_the_old_index_with_translated_queries(bridge, vectors):
    rng = np.random.default_rng(2)
    old = _unit(rng.standard_normal((500, D_TARGET)))
    queries = rng.standard_normal((30, D_SOURCE)).astype(np.float32)
    for normalize, index in ((True, faiss.IndexFlatIP(D_TARGET)), (False, faiss.IndexFlatL2(D_TARGET))):
        index.add(old)
        wrapped = prefix_transform(bridge, index, normalize=normalize)
        assert (
            isinstance(wrapped, faiss.IndexPreTransform) and wrapped.d == D_SOURCE and not wrapped.own_fields
        )
        translated = bridge.translate(queries)
        distances, labels = wrapped.search(queries, 10)
        expected_d, expected_l = index.search(_unit(translated) if normalize else translated, 10)
        np.testing.assert_array_equal(labels, expected_l)
        np.testing.assert_allclose(distances, expected_d, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(index.reconstruct_n(0, 500), old)  # the old vectors are untouched
        wrapped.add(vectors[:7])  # adding through the wrapper translates into the caller's index
        assert index.ntotal == 507
        added = _unit(bridge.translate(vectors[:7])) if normalize else bridge.translate(vectors[:7])
        np.testing.assert_allclose(index.reconstruct_n(500, 7), added, rtol=1e-4, atol=1e-4)
        del wrapped
        assert index.search(old[:1], 1)[1][0, 0] == 0  # still the caller's, alive and whole


def test_prefix_transform_of_a_direct_ensemble_adds_its_members(vectors):
    ensemble = LatentBridge.fit(*_anchors(), method="procrustes", ensemble=3)
    index = faiss.IndexFlatIP(D_TARGET)
    index.add(_unit(np.random.default_rng(3).standard_normal((200, D_TARGET))))
    labels = prefix_transform(ensemble, index).search(vectors[:20], 5)[1]
    np.testing.assert_array_equal(labels, index.search(_unit(ensemble.translate(vectors[:20])), 5)[1])


def test_prefix_transform_refusals(bridge):
    irp = LatentBridge.fit(*_anchors(), method="irp")
    unit, raw_l2 = faiss.IndexFlatIP(D_TARGET), faiss.IndexFlatL2(D_TARGET)
    unit.add(_unit(np.ones((3, D_TARGET))))
    raw_l2.add(np.full((3, D_TARGET), 5, np.float32))
    l1 = faiss.IndexFlat(D_TARGET, faiss.METRIC_L1)
    cases = [
        (irp, unit, {}, BridgeInputError,
         r"renormalises its output.*refit with method='procrustes' or 'linear' \(and blend=False\), or translate the "
         r"index itself with translate_vectors"),
        (bridge, faiss.IndexFlatIP(D_SOURCE), {}, IncompatibleEncoderError,
         "holds 8-dimensional vectors but the bridge translates into 12 dimensions .*fitted the other way"),
        (bridge, l1, {}, BridgeInputError, "uses METRIC_L1; only inner-product and L2"),
        (bridge, raw_l2, {}, BridgeInputError, "not of unit length.*pass normalize=False"),
        (bridge, np.ones((3, D_TARGET)), {}, BridgeInputError, r"must be a faiss index.*faiss.read_index\(path\)"),
    ]  # fmt: skip
    for b, index, options, error, message in cases:
        with pytest.raises(error, match=message):
            prefix_transform(b, index, **options)
    assert prefix_transform(bridge, raw_l2, normalize=False).ntotal == 3  # raw L2 search is the user's call


def test_translate_dataset(bridge, vectors):
    dataset = datasets.Dataset.from_dict({"embedding": vectors[:100].tolist(), "id": list(range(100))})
    features, fingerprint = dataset.features.copy(), dataset._fingerprint
    replaced = translate_dataset(bridge, dataset, "embedding", chunk_size=32)
    added = translate_dataset(bridge, dataset, "embedding", "new", chunk_size=32, normalize=True)
    expected = _chunked(bridge, vectors[:100].astype(np.float64), chunk=32)
    np.testing.assert_array_equal(replaced.with_format("numpy")["embedding"], expected)
    assert replaced.column_names == ["embedding", "id"] and replaced["id"] == list(range(100))
    assert added.column_names == ["embedding", "id", "new"] and list(added[0]) == ["embedding", "id", "new"]
    torch_view = translate_dataset(
        bridge, dataset.with_format("torch", columns=["embedding"]), "embedding", "t"
    )
    assert torch_view.format["type"] == "torch" and list(torch_view[0]) == ["embedding", "t"]
    np.testing.assert_array_equal(added.with_format("numpy")["new"], _unit(expected))
    assert added.features["new"] == datasets.List(datasets.Value("float32"), length=D_TARGET)
    # the input is untouched; the same call gives the same fingerprint (datasets' cache key)
    assert dataset.features == features and dataset._fingerprint == fingerprint
    np.testing.assert_array_equal(np.array(dataset["embedding"], np.float32), vectors[:100])
    again = translate_dataset(bridge, dataset, "embedding", chunk_size=32)
    assert again._fingerprint == replaced._fingerprint != added._fingerprint
    bad = vectors[:100].astype(np.float64)
    bad[40, 0] = np.inf
    cases = [
        (dataset, "id", None, "column 'id' does not hold vectors"),
        (dataset, "missing", None, "column 'missing' is not in the data set"),
        (dataset, "embedding", "id", "column 'id' is already in the dataset; choose another new_column"),
        (
            datasets.Dataset.from_dict({"e": np.ones((3, 5)).tolist()}),
            "e",
            None,
            "have 5 columns but the bridge",
        ),
        (
            datasets.Dataset.from_dict({"e": bad.tolist()}),
            "e",
            None,
            "row 40 of the vectors of column 'e' holds NaN",
        ),
        ({"embedding": vectors}, "embedding", None, r"must be a datasets.Dataset.*dataset\['train'\]"),
    ]
    for data, column, new, message in cases:
        with pytest.raises(BridgeInputError, match=message):
            translate_dataset(bridge, data, column, new, chunk_size=32)


TWO_PROCESSES = """
import sys
from pathlib import Path

from accelerate import Accelerator

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.errors import BridgeInputError
from hf_latent_bridge.retrieval.migration import translate_vectors

folder = Path(sys.argv[1])
accelerator = Accelerator(cpu=True)
try:
    bridge = LatentBridge.from_pretrained(folder / "bridge")
    for name, chunk in (("two.npy", 150), ("two.faiss", 150), ("two-direct.npy", 256), ("two-whole.npy", WHOLE)):
        translate_vectors(bridge, folder / "in.npy", folder / name, chunk_size=chunk, accelerator=accelerator)
    try:
        translate_vectors(bridge, folder / "bad.npy", folder / "bad.npy.out.npy", chunk_size=150, accelerator=accelerator)
    except BridgeInputError as error:
        (folder / f"error-{accelerator.process_index}.txt").write_text(str(error))
    (folder / f"processes-{accelerator.process_index}.txt").write_text(str(accelerator.num_processes))
finally:
    accelerator.end_training()
"""


def test_two_processes_write_the_bytes_of_one(bridge, vectors, tmp_path):
    bridge.save_pretrained(tmp_path / "bridge")
    np.save(tmp_path / "in.npy", vectors)
    bad = vectors.copy()
    bad[700, 0] = np.nan  # chunk 4, process 0's
    bad[500, 1] = np.inf  # chunk 3, process 1's: the lowest row, which both processes must report
    np.save(tmp_path / "bad.npy", bad)
    (tmp_path / "script.py").write_text(textwrap.dedent(TWO_PROCESSES).replace("WHOLE", str(N)))
    one = translate_vectors(bridge, tmp_path / "in.npy", tmp_path / "one.npy", chunk_size=150)
    one_index = translate_vectors(bridge, tmp_path / "in.npy", tmp_path / "one.faiss", chunk_size=150)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("OMP_NUM_THREADS", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    ran = subprocess.run(
        [*command, str(tmp_path / "script.py"), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert [(tmp_path / f"processes-{r}.txt").read_text() for r in (0, 1)] == ["2", "2"]
    # 7 chunks of 150 rows: process 0 writes 4, process 1 writes 3 (the last one short)
    assert _digest(tmp_path / "two.npy") == _digest(one)
    assert _digest(tmp_path / "two.faiss") == _digest(one_index)
    # chunks of 256 rows written with O_DIRECT; one chunk of all rows, so process 1 writes none
    assert _digest(tmp_path / "two-direct.npy") == _digest(
        translate_vectors(bridge, tmp_path / "in.npy", tmp_path / "one-direct.npy", chunk_size=256)
    )
    np.testing.assert_array_equal(np.load(tmp_path / "two-whole.npy"), bridge.translate(vectors))
    errors = {(tmp_path / f"error-{r}.txt").read_text() for r in (0, 1)}
    assert len(errors) == 1 and "row 500 of the vectors in" in errors.pop()
    assert not (tmp_path / "bad.npy.out.npy").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
