"""Two CPU processes (torchrun or accelerate launch) give exactly the single-process stitching matrix.

`hf-latent-bridge eval` shards embedding and evaluation with accelerate and gathers with
`gather_for_metrics`; here it runs in the test process, then under
`python -m torch.distributed.run --standalone --nproc_per_node 2` (and, with ``-m slow``, under the other
documented launcher, `accelerate launch --multi_gpu --num_processes 2`), on real ChatterBot utterances with
two tiny BERT encoders. Sizes are chosen so that the last step of both the embedding and the evaluation
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
from typer.testing import CliRunner

from hf_latent_bridge.cli import app
from hf_latent_bridge.encoding import load_encoder
from hf_latent_bridge.encoding.tables import labelled_splits


def _eval(launcher: list[str] | None, out: Path, data: Path, a: str, b: str) -> dict:
    """Run ``eval`` (in this process without a launcher) with an embedding cache of its own beside ``out``."""
    args = [
        "eval", f"a={a}", f"b={b}", "-d", str(data), "--label-column", "topic", "-o", str(out),
        "--methods", "procrustes,irp", "--batch-size", "14", "--chunk-size", "20",
        "--cache-dir", str(out.parent / "cache"),
    ]  # fmt: skip
    if launcher is None:
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, done.output
    else:
        # no thread pinning: torchrun's workers take one thread each, whatever this process uses
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        env.pop("OMP_NUM_THREADS", None)
        command = [sys.executable, *launcher, "-m", "hf_latent_bridge.cli", *args]
        ran = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
        assert ran.returncode == 0, ran.stderr[-3000:]
    return json.loads((out / "stitching_matrix.json").read_text())


def _cached_embeddings(folder: Path) -> dict[str, torch.Tensor]:
    return {p.name: load_file(p)["embeddings"] for p in sorted(folder.glob("*.safetensors"))}


def _metrics(matrix: dict) -> list[dict]:
    return [{k: v for k, v in cell.items() if k != "seconds"} for cell in matrix["cells"]]


@pytest.fixture(scope="module")
def single_process(tmp_path_factory, topics_file, tiny_bert_path, tiny_bert48_path) -> dict:
    out = tmp_path_factory.mktemp("one-process") / "out"
    return {**_eval(None, out, topics_file, tiny_bert_path, tiny_bert48_path), "cache": out.parent / "cache"}


LAUNCHERS = {
    "torchrun": ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
    # on a CPU-only machine --multi_gpu is what makes accelerate start two processes (--cpu starts one)
    "accelerate-launch": ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"],
}


@pytest.mark.parametrize("launcher", ["torchrun", pytest.param("accelerate-launch", marks=pytest.mark.slow)])
def test_two_processes_equal_one_process_exactly(
    launcher, tmp_path, single_process, topics_file, tiny_bert_path, tiny_bert48_path
):
    rows = len(topics_file.read_text().splitlines())
    single = single_process
    double = _eval(LAUNCHERS[launcher], tmp_path / "two", topics_file, tiny_bert_path, tiny_bert48_path)

    assert single["num_processes"] == 1 and double["num_processes"] == 2
    # every test row was gathered exactly once (the padding of the last step is dropped)
    assert double["num_gathered"] == double["num_test"] == single["num_test"]
    assert double["num_test"] + double["num_train"] == rows
    # odd numbers of chunks: the last step of the evaluation loader and of an embedding loader is padded
    assert -(-double["num_test"] // 20) % 2 == 1
    splits = labelled_splits(str(topics_file), column="text", label_column="topic", test_size=0.3)
    train, test = splits.train, splits.test
    assert (len(train), len(test)) == (double["num_train"], double["num_test"])
    # the train split's embedding batches (token-balanced, 14 at most) are odd in number too
    assert len(load_encoder(tiny_bert_path).batches(list(train["text"]), 14)) % 2 == 1
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
