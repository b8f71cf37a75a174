"""Two CPU processes (torchrun or accelerate launch) give exactly the single-process stitching matrix.

`hf-latent-bridge eval` shards embedding and evaluation with accelerate and gathers with
`gather_for_metrics`; here it runs as one process, then under
`python -m torch.distributed.run --standalone --nproc_per_node 2` and under
`accelerate launch --multi_gpu --num_processes 2`, on real ChatterBot utterances with two
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
from safetensors.torch import load_file

from hf_latent_bridge.encoding import load_encoder
from hf_latent_bridge.encoding.tables import labelled_splits
from tests.conftest import save_tiny_bert, write_topics_jsonl


@pytest.fixture(scope="module")
def topics_jsonl(tmp_path_factory) -> Path:
    return write_topics_jsonl(tmp_path_factory.mktemp("dist-data") / "topics.jsonl", every=4)


@pytest.fixture(scope="module")
def second_encoder(tiny_models_dir) -> str:
    return save_tiny_bert(tiny_models_dir / "tiny-bert-40-dist", hidden_size=40, seed=2)


def _eval(launcher: list[str], out: Path, data: Path, a: str, b: str) -> dict:
    """Run ``eval`` with an embedding cache of its own in ``out``'s parent, ``cache``."""
    command = [
        *launcher, "-m", "hf_latent_bridge.cli", "eval", f"a={a}", f"b={b}",
        "-d", str(data), "--label-column", "topic", "-o", str(out),
        "--methods", "procrustes,irp", "--batch-size", "16", "--chunk-size", "20",
        "--cache-dir", str(out.parent / "cache"),
    ]  # fmt: skip
    # no thread pinning: the single process uses torch's default threads, torchrun's workers one each
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "stitching_matrix.json").read_text())


def _cached_embeddings(folder: Path) -> dict[str, torch.Tensor]:
    return {p.name: load_file(p)["embeddings"] for p in sorted(folder.glob("*.safetensors"))}


def _metrics(matrix: dict) -> list[dict]:
    return [{k: v for k, v in cell.items() if k != "seconds"} for cell in matrix["cells"]]


@pytest.fixture(scope="module")
def single_process(tmp_path_factory, topics_jsonl, tiny_bert_path, second_encoder) -> dict:
    out = tmp_path_factory.mktemp("one-process") / "out"
    return {
        **_eval([sys.executable], out, topics_jsonl, tiny_bert_path, second_encoder),
        "cache": out.parent / "cache",
    }


LAUNCHERS = {
    "torchrun": ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
    # on a CPU-only machine --multi_gpu is what makes accelerate start two processes (--cpu starts one)
    "accelerate-launch": ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_processes_equal_one_process_exactly(
    launcher, tmp_path, single_process, topics_jsonl, tiny_bert_path, second_encoder
):
    rows = len(topics_jsonl.read_text().splitlines())
    single = single_process
    command = [sys.executable, *LAUNCHERS[launcher]]
    double = _eval(command, tmp_path / "two", topics_jsonl, tiny_bert_path, second_encoder)

    assert single["num_processes"] == 1 and double["num_processes"] == 2
    # every test row was gathered exactly once (the padding of the last step is dropped)
    assert double["num_gathered"] == double["num_test"] == single["num_test"]
    assert double["num_test"] + double["num_train"] == rows
    # odd numbers of chunks: the last step of the evaluation loader and of an embedding loader is padded
    assert -(-double["num_test"] // 20) % 2 == 1
    splits = labelled_splits(str(topics_jsonl), column="text", label_column="topic", test_size=0.3)
    train, test = splits.train, splits.test
    assert (len(train), len(test)) == (double["num_train"], double["num_test"])
    # the train split's embedding batches (token-balanced, 16 at most) are odd in number too
    assert len(load_encoder(tiny_bert_path).batches(list(train["text"]), 16)) % 2 == 1
    # bit-for-bit the same embeddings (one cache file per encoder and split, written by the main
    # process only, under the same keys) and the same metrics in every cell, not merely close
    one, two = _cached_embeddings(single["cache"]), _cached_embeddings(tmp_path / "cache")
    assert len(one) == 4 and one.keys() == two.keys()
    assert all(torch.equal(one[name], two[name]) for name in one)
    assert _metrics(double) == _metrics(single)
    assert all(cell["accuracy"] is not None for cell in double["cells"])
    # only the main process wrote outputs, and it wrote all of them
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "heatmap.png",
        "stitching_matrix.json",
        "stitching_matrix.md",
    ]
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
