"""StitchedModel and pipeline("stitched-classification") on tiny text, vision and CLIP-style models, offline."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.pt_utils import KeyDataset

from hf_latent_bridge import (
    BridgeInputError,
    CallableEncoder,
    CheckpointError,
    ClassificationHead,
    IncompatibleEncoderError,
    LatentBridge,
    StitchedClassificationPipeline,
    StitchedConfig,
    StitchedModel,
    load_encoder,
)

TASK = "stitched-classification"


@pytest.fixture(scope="module")
def topics():
    """Real utterances with topic labels (chatterbot corpus): 240 for anchors/head, 24 to classify."""
    from hf_latent_bridge.demo import chatterbot_topics_splits

    splits = chatterbot_topics_splits(test_size=0.3, seed=0)
    train, test = splits["train"].select(range(240)), splits["test"].select(range(24))
    names = splits["train"].features["label"].names
    return list(train["text"]), np.array(train["label"]), list(test["text"]), names


@pytest.fixture(scope="module")
def text_parts(topics, tiny_bert_path, tiny_clip_path):
    """Tiny BERT (source, 32-d mean) -> tiny CLIP text tower (target, 16-d projection) + a head."""
    train_texts, labels, _, names = topics
    source = load_encoder(tiny_bert_path)
    target = load_encoder(tiny_clip_path, tower="text")
    ys = target.embed(train_texts)
    bridge = LatentBridge.fit(
        source.embed(train_texts), ys, source_encoder=source.ref, target_encoder=target.ref
    )
    head = ClassificationHead.fit(ys, labels, id2label=names, pooling=target.ref.pooling, encoder=target.ref)
    return source, bridge, head


@pytest.fixture(scope="module")
def text_folder(text_parts, tmp_path_factory) -> str:
    source, bridge, head = text_parts
    folder = tmp_path_factory.mktemp("stitched-text")
    StitchedModel.from_parts(bridge, head, source_encoder=source).save_pretrained(folder)
    return str(folder)


def _by_hand(source, bridge, head, inputs) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(head(bridge(source.embed(inputs))), dim=-1)


def _check_against(results, probs, id2label, top_k):
    assert len(results) == len(probs)
    for row, p in zip(results, probs, strict=True):
        scores, indices = p.topk(top_k)
        assert [r["label"] for r in row] == [id2label[int(i)] for i in indices]
        np.testing.assert_allclose([r["score"] for r in row], scores.numpy(), atol=1e-5)


def _assert_same(results, expected) -> None:
    """Same labels in the same order, scores equal up to float noise (batches may pad differently)."""
    assert [[r["label"] for r in row] for row in results] == [[r["label"] for r in row] for row in expected]
    np.testing.assert_allclose(
        [[r["score"] for r in row] for row in results],
        [[r["score"] for r in row] for row in expected],
        atol=1e-5,
    )


@contextlib.contextmanager
def _batch_shapes(module: torch.nn.Module):
    """Record the shape of the first tensor of every forward call of ``module`` (one per model batch)."""
    shapes: list[tuple[int, ...]] = []

    def record(_module, args, kwargs, _output):
        first = next(x for x in (*args, *kwargs.values()) if isinstance(x, torch.Tensor))
        shapes.append(tuple(first.shape))

    handle = module.register_forward_hook(record, with_kwargs=True)
    try:
        yield shapes
    finally:
        handle.remove()


def test_task_is_registered_on_import(text_folder):
    assert TASK in PIPELINE_REGISTRY.get_supported_tasks()
    assert isinstance(AutoConfig.from_pretrained(text_folder), StitchedConfig)
    assert isinstance(AutoModel.from_pretrained(text_folder), StitchedModel)


def test_text_pipeline_from_folder_matches_by_hand(text_parts, text_folder, topics):
    source, bridge, head = text_parts
    texts = topics[2]
    clf = pipeline(
        TASK, model=text_folder
    )  # the source encoder is loaded from the path recorded in the folder
    assert isinstance(clf, StitchedClassificationPipeline)
    probs = _by_hand(source, bridge, head, texts)
    _check_against(clf(texts, top_k=3, batch_size=4), probs, head.id2label, 3)
    single = clf(texts[0])
    assert len(single) == 1 and single[0]["label"] == head.id2label[int(probs[0].argmax())]
    everything = clf(texts[:2], top_k=None)
    assert [len(r) for r in everything] == [head.num_labels] * 2
    assert everything[0][0]["score"] >= everything[0][-1]["score"]
    # the same, with the encoder passed in instead of loaded
    clf2 = pipeline(TASK, model=text_folder, source_encoder=source, top_k=2, local_files_only=True)
    _check_against(clf2(texts), probs, head.id2label, 2)


def test_save_load_round_trip_is_exact(text_parts, text_folder, topics):
    source, bridge, head = text_parts
    model = StitchedModel.from_pretrained(text_folder)
    assert model.config.source.name_or_path == source.ref.name_or_path
    assert model.config.source.pooling == "mean" and model.config.id2label == head.id2label
    for name, tensor in bridge.state_dict().items():
        assert torch.equal(model.bridge.state_dict()[name], tensor), name
    assert torch.equal(model.head.weight, head.weight) and torch.equal(model.head.bias, head.bias)
    x = source.embed(topics[2][:5])
    torch.testing.assert_close(model.logits_from_embeddings(x), head(bridge(x)).detach(), atol=0, rtol=0)


def test_from_pretrained_refuses_missing_or_unexpected_tensors(text_folder, tmp_path):
    import shutil

    for case in ("missing", "unexpected"):
        folder = tmp_path / case
        shutil.copytree(text_folder, folder)
        tensors = load_file(str(folder / "model.safetensors"))
        if case == "missing":
            tensors.pop("head.bias")
        else:
            tensors["head.extra"] = torch.zeros(2)
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
        with pytest.raises(CheckpointError, match=case):
            StitchedModel.from_pretrained(folder)
    with pytest.raises(OSError):
        StitchedModel.from_pretrained(tmp_path)


@pytest.fixture(scope="module")
def image_parts(tiny_vit_path, tiny_clip_path, tmp_path_factory):
    """Vision source (tiny ViT) -> CLIP image tower target + a head; the saved folder and 6 query images."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(80, 32, 32, 3), dtype=np.uint8)
    labels = (images[..., 0].mean((1, 2)) > images[..., 2].mean((1, 2))).astype(int)
    source = load_encoder(tiny_vit_path, pooling="mean")
    target = load_encoder(tiny_clip_path, tower="image")
    ys = target.embed(images)
    bridge = LatentBridge.fit(source.embed(images), ys, source_encoder=source.ref, target_encoder=target.ref)
    head = ClassificationHead.fit(ys, labels, id2label=["blue", "red"])
    folder = tmp_path_factory.mktemp("stitched-image")
    StitchedModel.from_parts(bridge, head, source_encoder=source).save_pretrained(folder / "model")
    return source, bridge, head, str(folder / "model"), images[:6]


def test_image_pipeline_with_pil_arrays_and_paths(image_parts, tmp_path):
    """Classifying PIL images, arrays and image paths, one at a time or as a list (or tuple)."""
    source, bridge, head, folder, queries = image_parts
    clf = pipeline(TASK, model=folder)
    probs = _by_hand(source, bridge, head, list(queries))
    paths = []
    for i, array in enumerate(queries):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(array).save(paths[-1])
    for inputs in ([Image.fromarray(a) for a in queries], list(queries), paths, tuple(paths)):
        _check_against(clf(inputs, top_k=2, batch_size=4), probs, head.id2label, 2)
    assert clf(Image.fromarray(queries[0]))[0]["label"] == head.id2label[int(probs[0].argmax())]
    assert clf(queries[0]) == clf(paths[0]) == clf([queries[0]])[0]  # one (h, w, c) array is one image
    with _batch_shapes(clf.encoder.model) as calls:
        with pytest.raises(IncompatibleEncoderError, match="embeds images"):
            clf(["a photo of a red square"])
        with pytest.raises(IncompatibleEncoderError, match="input 1 is a string that is not an image"):
            clf([paths[0], "nowhere.png"])
        with pytest.raises(BridgeInputError, match="empty"):
            clf([])
        with pytest.raises(BridgeInputError, match="embeds images"):
            clf([np.zeros((2, 2, 8, 8, 3), dtype=np.uint8)])
    assert calls == []


def test_callable_source_encoder_offline(tmp_path):
    """A non-transformers source encoder is passed in; the folder records its name, dim and modality."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 6))
    source = CallableEncoder(
        net,
        name="local/flat-net",
        modality="image",
        dim=6,
        preprocess=lambda batch: torch.as_tensor(np.stack(batch)).float() / 255,
    )
    images = np.random.default_rng(1).integers(0, 256, size=(60, 4, 4), dtype=np.uint8)
    xs = source.embed(images)
    ys = xs @ torch.randn(6, 9) + 0.1 * torch.randn(60, 9)
    bridge = LatentBridge.fit(xs, ys, source_encoder=source.ref)
    head = ClassificationHead.fit(ys, (ys[:, 0] > ys[:, 0].median()).long(), id2label=["low", "high"])
    StitchedModel.from_parts(bridge, head).save_pretrained(tmp_path)
    clf = pipeline(TASK, model=str(tmp_path), source_encoder=source)
    _check_against(
        clf(list(images[:8]), top_k=1), _by_hand(source, bridge, head, images[:8]), head.id2label, 1
    )


def test_encoder_disagreeing_with_the_bridge_is_refused(
    text_parts, text_folder, tiny_st_path, tiny_clip_path
):
    source, _, _ = text_parts
    with pytest.raises(IncompatibleEncoderError, match="16-dimensional"):
        pipeline(TASK, model=text_folder, source_encoder=load_encoder(tiny_clip_path, tower="text"))
    cls_pooled = load_encoder(source.ref.name_or_path, pooling="cls")
    with pytest.raises(IncompatibleEncoderError, match="'mean'-pooled"):
        pipeline(TASK, model=text_folder, source_encoder=cls_pooled)
    renamed = load_encoder(tiny_st_path, pooling="mean")  # same weights, another folder
    with pytest.raises(IncompatibleEncoderError, match="strict=False"):
        StitchedModel.from_pretrained(text_folder, source_encoder=renamed)
    model = StitchedModel.from_pretrained(text_folder, source_encoder=renamed, strict=False)
    assert model.source_encoder is renamed
    image = CallableEncoder(lambda b: torch.zeros(len(b), 32), name="img", modality="image", dim=32)
    with pytest.raises(IncompatibleEncoderError, match="embeds image but the bridge was fitted on text"):
        StitchedModel.from_pretrained(text_folder, source_encoder=image, strict=False)
    with pytest.raises(BridgeInputError, match="Encoder"):
        StitchedModel.from_pretrained(text_folder, source_encoder="not an encoder")


def test_bad_calls_fail_before_compute(text_folder, text_parts):
    source, _, _ = text_parts
    clf = pipeline(TASK, model=text_folder, source_encoder=source)
    with _batch_shapes(source.model) as calls:
        with pytest.raises(BridgeInputError, match="empty"):
            clf([])
        with pytest.raises(BridgeInputError, match="empty"):
            clf(KeyDataset([], "text"))
        with pytest.raises(BridgeInputError, match="embeds text"):
            clf(np.zeros((2, 8, 8, 3), dtype=np.uint8))
        with pytest.raises(BridgeInputError, match="input 1 is"):
            clf(["fine", Image.new("RGB", (8, 8))])
        for nothing in (None, 42, b"bytes", {"text": "a dict is not a text"}):
            with pytest.raises(BridgeInputError, match="embeds text"):
                clf(nothing)
        for top_k in (0, -1, True, 1.5, "3"):
            with pytest.raises(BridgeInputError, match="top_k"):
                clf(["fine"], top_k=top_k)
        for batch_size in (0, -1, True, 2.5, "8"):
            with pytest.raises(BridgeInputError, match="batch_size"):
                clf(["fine"], batch_size=batch_size)
        with pytest.raises(ValueError, match="num_workers"):  # the DataLoader's own check
            clf(["fine"], num_workers=-1)
        with pytest.raises(BridgeInputError, match="unknown argument"):
            clf(["fine"], temperature=2)
        with pytest.raises(TypeError):
            clf("one", "two")
        for options in ({"batch_size": 0}, {"top_k": 0}, {"temperature": 2}):
            with pytest.raises(BridgeInputError, match=next(iter(options))):
                pipeline(TASK, model=text_folder, source_encoder=source, **options)
    assert calls == []
    # numpy integers are integers
    assert [len(r) for r in clf(["a", "b", "c"], top_k=np.int64(2), batch_size=np.int32(2))] == [2, 2, 2]


def test_batches_go_to_the_encoder_sorted_by_length(text_folder, text_parts, topics):
    """At most batch_size inputs per model call, padded to their longest, in the encoder's own batch plan
    (length-sorted, token-balanced): for a list as a whole, for a stream chunk by chunk."""
    source, bridge, head = text_parts
    texts = topics[2]
    lengths = [len(ids) for ids in source.tokenizer(texts)["input_ids"]]
    clf = pipeline(TASK, model=text_folder, source_encoder=source)

    def planned(rows: list[int], batch_size: int) -> list[tuple[int, int]]:
        batches = source.batches([texts[i] for i in rows], batch_size)
        return [(len(b), max(lengths[rows[int(j)]] for j in b)) for b in batches]

    with _batch_shapes(source.model) as shapes:
        results = clf(texts[:10], batch_size=4)
    assert shapes == planned(list(range(10)), 4) and max(n for n, _ in shapes) <= 4
    _check_against(results, _by_hand(source, bridge, head, texts[:10]), head.id2label, 1)
    with _batch_shapes(source.model) as shapes:
        clf(texts)
    assert shapes == planned(list(range(24)), 32)  # the default batch size is 32
    with _batch_shapes(source.model) as shapes:
        clf(texts[:3], batch_size=1)
    assert sorted(shapes) == sorted((1, lengths[i]) for i in range(3))
    with _batch_shapes(source.model) as shapes:
        list(clf(iter(texts), batch_size=5))
    assert shapes == [w for s in range(0, 24, 5) for w in planned(list(range(s, min(s + 5, 24))), 5)]
    eights = pipeline(TASK, model=text_folder, source_encoder=source, batch_size=8)
    with _batch_shapes(source.model) as shapes:
        eights(texts)
    assert shapes == planned(list(range(24)), 8)


def test_generators_and_iterators_stream_lazily(text_folder, text_parts, topics):
    """Like transformers' own pipelines: results come as inputs are read, not after reading them all."""
    source, _, _ = text_parts
    texts = topics[2]
    clf = pipeline(TASK, model=text_folder, source_encoder=source)
    expected = clf(texts, batch_size=4, top_k=2)
    pulled: list[str] = []

    def generate():
        for text in texts:
            pulled.append(text)
            yield text

    stream = clf(generate(), batch_size=4, top_k=2)
    assert not isinstance(stream, list) and len(pulled) <= 1  # transformers peeks at the first input
    first = next(stream)
    assert len(pulled) == 4  # one batch read, the other 20 inputs not yet
    _assert_same([first, *stream], expected)
    assert len(pulled) == len(texts)
    streamed = clf(iter(texts), batch_size=4, top_k=2)
    assert not isinstance(streamed, list)
    _assert_same(list(streamed), expected)
    assert list(clf(t for t in [])) == []  # an empty stream yields nothing


def test_key_dataset_streams_lazily(text_folder, text_parts, topics):
    from datasets import Dataset

    source, _, _ = text_parts
    texts = topics[2]
    clf = pipeline(TASK, model=text_folder, source_encoder=source)
    expected = clf(texts, batch_size=4)

    class Rows:
        """A map-style table that records which rows were read."""

        def __init__(self) -> None:
            self.read: list[int] = []

        def __len__(self) -> int:
            return len(texts)

        def __getitem__(self, i: int) -> dict[str, str]:
            self.read.append(i)
            return {"text": texts[i]}

    rows = Rows()
    stream = clf(KeyDataset(rows, "text"), batch_size=4)
    first = next(stream)
    assert set(rows.read) == {0, 1, 2, 3}
    _assert_same([first, *stream], expected)
    dataset = Dataset.from_dict({"text": texts, "label": list(range(len(texts)))})
    _assert_same(list(clf(KeyDataset(dataset, "text"), batch_size=4)), expected)
    assert clf(list(dataset["text"]), batch_size=4) == expected  # a column as a list: one list of results


def test_calls_keep_no_state_on_the_pipeline(text_folder, text_parts, topics):
    source, _, _ = text_parts
    texts = topics[2]
    clf = pipeline(TASK, model=text_folder, source_encoder=source)
    before = dict(vars(clf))
    clf(texts[:5], top_k=2, batch_size=2)
    clf(texts[0])
    list(clf(iter(texts[:3]), top_k=None))
    with pytest.raises(BridgeInputError):
        clf([texts[0], 42])
    after = dict(vars(clf))
    before.pop("call_count"), after.pop("call_count")  # transformers' own call counter
    assert after.keys() == before.keys()
    assert all(after[name] is before[name] for name in before)


def _from_threads(clf, calls, threads: int = 8, per_thread: int = 50) -> None:
    """Run ``calls`` from ``threads`` threads at once; every result must equal the serial one exactly."""
    serial = [clf(inputs, **options) for inputs, options in calls]
    start = threading.Barrier(threads)

    def work(t: int) -> list[tuple[int, object]]:
        start.wait()
        picks = [(t * 7 + j) % len(calls) for j in range(per_thread)]
        return [(i, clf(calls[i][0], **calls[i][1])) for i in picks]

    with ThreadPoolExecutor(threads) as pool:
        results = [r for future in [pool.submit(work, t) for t in range(threads)] for r in future.result()]
    assert len(results) == threads * per_thread
    assert [i for i, result in results if result != serial[i]] == []


def test_one_text_pipeline_from_eight_threads(text_folder, text_parts, topics):
    source, _, _ = text_parts
    texts = topics[2]
    clf = pipeline(TASK, model=text_folder, source_encoder=source)
    calls = [(texts[i], {}) for i in range(6)]
    calls += [(texts[i : i + 5], {"top_k": 2, "batch_size": 2}) for i in range(0, 20, 5)]
    calls += [(texts[i : i + 3], {"top_k": None}) for i in range(3)]
    _from_threads(clf, calls)


def test_one_image_pipeline_from_eight_threads(image_parts):
    *_, folder, queries = image_parts
    clf = pipeline(TASK, model=folder)
    calls = [(queries[i], {}) for i in range(3)]
    calls += [(list(queries[i : i + 3]), {"top_k": 2, "batch_size": 2}) for i in range(3)]
    calls += [(list(queries), {"top_k": None, "batch_size": 4})]
    _from_threads(clf, calls)


def test_head_must_fit_the_bridge_target(text_parts):
    _source, bridge, head = text_parts
    wrong_dim = ClassificationHead.from_linear(torch.zeros(head.num_labels, head.input_dim + 1))
    with pytest.raises(IncompatibleEncoderError, match="bridge outputs 16"):
        StitchedModel.from_parts(bridge, wrong_dim)
    wrong_pooling = ClassificationHead.from_linear(head.weight, pooling="pooler")
    with pytest.raises(IncompatibleEncoderError, match="'pooler'-pooled"):
        StitchedModel.from_parts(bridge, wrong_pooling)
    with pytest.raises(BridgeInputError, match="ClassificationHead"):
        StitchedModel.from_parts(bridge, torch.nn.Linear(16, 2))


def test_model_without_recorded_source_needs_one(text_parts, tmp_path):
    _, bridge, head = text_parts
    anonymous = LatentBridge.fit(bridge.source_anchors, bridge.target_anchors)
    model = StitchedModel.from_parts(anonymous, head)
    with pytest.raises(IncompatibleEncoderError, match="records no source encoder"):
        model.classify(["hello"])
