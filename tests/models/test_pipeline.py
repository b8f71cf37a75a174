"""StitchedModel and pipeline("stitched-classification") on tiny text, vision and CLIP-style models, offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

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
    from hf_latent_bridge.demo.resources import chatterbot_topics_splits

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
    with pytest.raises(CheckpointError, match=r"config\.json"):
        StitchedModel.from_pretrained(tmp_path)


def test_image_pipeline_with_pil_arrays_and_paths(tiny_vit_path, tiny_clip_path, tmp_path):
    """Vision source (tiny ViT) -> CLIP image tower target, classifying PIL images, arrays and paths."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(80, 32, 32, 3), dtype=np.uint8)
    labels = (images[..., 0].mean((1, 2)) > images[..., 2].mean((1, 2))).astype(int)
    source = load_encoder(tiny_vit_path, pooling="mean")
    target = load_encoder(tiny_clip_path, tower="image")
    ys = target.embed(images)
    bridge = LatentBridge.fit(source.embed(images), ys, source_encoder=source.ref, target_encoder=target.ref)
    head = ClassificationHead.fit(ys, labels, id2label=["blue", "red"])
    StitchedModel.from_parts(bridge, head, source_encoder=source).save_pretrained(tmp_path / "model")
    clf = pipeline(TASK, model=str(tmp_path / "model"))
    queries = images[:6]
    probs = _by_hand(source, bridge, head, list(queries))
    paths = []
    for i, array in enumerate(queries):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(array).save(paths[-1])
    for inputs in ([Image.fromarray(a) for a in queries], list(queries), paths, queries):
        _check_against(clf(inputs, top_k=2, batch_size=4), probs, head.id2label, 2)
    assert clf(Image.fromarray(queries[0]))[0]["label"] == head.id2label[int(probs[0].argmax())]
    calls = []
    source.model.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(IncompatibleEncoderError, match="embeds images"):
        clf(["a photo of a red square"])
    with pytest.raises(BridgeInputError, match="empty"):
        clf([])
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
    with pytest.raises(IncompatibleEncoderError, match="text embeddings"):
        StitchedModel.from_pretrained(text_folder, source_encoder=image, strict=False)
    with pytest.raises(BridgeInputError, match="Encoder"):
        StitchedModel.from_pretrained(text_folder, source_encoder="not an encoder")


def test_bad_calls_fail_before_compute(text_folder, text_parts):
    source, _, _ = text_parts
    clf = pipeline(TASK, model=text_folder, source_encoder=source)
    calls = []
    source.model.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(BridgeInputError, match="empty"):
        clf([])
    with pytest.raises(IncompatibleEncoderError, match="embeds text"):
        clf(np.zeros((2, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(IncompatibleEncoderError, match="input 1"):
        clf(["fine", Image.new("RGB", (8, 8))])
    with pytest.raises(BridgeInputError, match="top_k"):
        clf(["fine"], top_k=0)
    with pytest.raises(BridgeInputError, match="batch_size"):
        clf(["fine"], batch_size=-1)
    with pytest.raises(BridgeInputError, match="unknown argument"):
        clf(["fine"], temperature=2)
    assert calls == []


def test_head_must_fit_the_bridge_target(text_parts):
    _source, bridge, head = text_parts
    wrong_dim = ClassificationHead(head.input_dim + 1, head.num_labels)
    with pytest.raises(IncompatibleEncoderError, match="bridge outputs 16"):
        StitchedModel.from_parts(bridge, wrong_dim)
    wrong_pooling = ClassificationHead(head.input_dim, head.num_labels, pooling="pooler")
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
