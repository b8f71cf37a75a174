"""Two CPU processes (torchrun) give exactly the single-process stitching matrix.

`hf-latent-bridge eval` shards embedding and evaluation with accelerate and gathers with
`gather_for_metrics`; here it runs once as one process and once under
`python -m torch.distributed.run --standalone --nproc_per_node 2`, on real ChatterBot utterances with two
tiny BERT encoders. Sizes are chosen so that the last step of both the embedding and the evaluation
loaders is padded by accelerate (odd numbers of chunks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def topics_jsonl(tmp_path_factory) -> Path:
    from hf_latent_bridge.resources import chatterbot_topics

    dataset = chatterbot_topics()
    names = dataset.features["label"].names
    path = tmp_path_factory.mktemp("dist-data") / "topics.jsonl"
    rows = [
        {"text": dataset[i]["text"], "topic": names[dataset[i]["label"]]} for i in range(0, len(dataset), 4)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture(scope="module")
def second_encoder(tiny_models_dir, tiny_bert_path) -> str:
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tiny_models_dir / "tiny-bert-40-dist"
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_path)
    torch.manual_seed(2)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=40,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=80,
        max_position_embeddings=128,
    )
    BertModel(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def _eval(launcher: list[str], out: Path, data: Path, a: str, b: str) -> dict:
    command = [
        *launcher, "-m", "hf_latent_bridge.cli", "eval", f"a={a}", f"b={b}",
        "-d", str(data), "--label-column", "topic", "-o", str(out),
        "--methods", "procrustes,irp", "--batch-size", "16", "--chunk-size", "20",
    ]  # fmt: skip
    # no thread pinning: the single process uses torch's default threads, torchrun's workers one each
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "stitching_matrix.json").read_text())


def _metrics(matrix: dict) -> list[dict]:
    return [{k: v for k, v in cell.items() if k != "seconds"} for cell in matrix["cells"]]


def test_two_processes_equal_one_process_exactly(tmp_path, topics_jsonl, tiny_bert_path, second_encoder):
    rows = len(topics_jsonl.read_text().splitlines())
    single = _eval([sys.executable], tmp_path / "one", topics_jsonl, tiny_bert_path, second_encoder)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    double = _eval(torchrun, tmp_path / "two", topics_jsonl, tiny_bert_path, second_encoder)

    assert single["num_processes"] == 1 and double["num_processes"] == 2
    # every test row was gathered exactly once (the padding of the last step is dropped)
    assert double["num_gathered"] == double["num_test"] == single["num_test"]
    assert double["num_test"] + double["num_train"] == rows
    assert -(-double["num_test"] // 20) % 2 == 1  # odd number of evaluation chunks: the last step is padded
    # bit-for-bit the same metrics in every cell, not merely close
    assert _metrics(double) == _metrics(single)
    assert all(cell["accuracy"] is not None for cell in double["cells"])
    # only the main process wrote outputs, and it wrote all of them
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "heatmap.png",
        "stitching_matrix.json",
        "stitching_matrix.md",
    ]
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
