"""The offline demo end to end (slow: embeds the ChatterBot topics with all-MiniLM-L6-v2 and all-mpnet-base-v2).

Run with ``python -m pytest tests/test_demo.py -m slow``.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.cli import app
from hf_latent_bridge.models.stitched import StitchedModel

pytestmark = pytest.mark.slow


def test_demo_command_end_to_end(tmp_path):
    out = tmp_path / "demo_output"
    result = CliRunner().invoke(app, ["demo", "--output", str(out)])
    assert result.exit_code == 0, result.output + result.stderr
    text = result.output
    assert "| MiniLM → mpnet |" in text and "| mpnet → MiniLM |" in text
    assert 'pipeline("stitched-classification")' in text

    matrix = json.loads((out / "stitching_matrix.json").read_text())
    assert matrix["encoders"] == ["MiniLM", "mpnet"] and matrix["dims"] == {"MiniLM": 384, "mpnet": 768}
    assert matrix["num_gathered"] == matrix["num_test"] > 500
    cells = {(c["source"], c["target"], c["method"]): c for c in matrix["cells"]}
    chance = 1 / matrix["num_classes"]
    for source, target in [("MiniLM", "mpnet"), ("mpnet", "MiniLM")]:
        assert cells[(source, target, "identity")]["accuracy"] is None  # 384 vs 768: no identity
        native = cells[(target, target, "native")]["accuracy"]
        assert native > 0.7
        for method in ("procrustes", "irp"):
            stitched = cells[(source, target, method)]["accuracy"]
            assert stitched > 10 * chance and stitched > native - 0.15, (
                source,
                target,
                method,
                stitched,
                native,
            )
    for name in ("heatmap.png", "anchor_curve.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"

    bridge = LatentBridge.from_pretrained(out / "bridge-minilm-to-mpnet")
    assert bridge.config.source.name_or_path == "sentence-transformers/all-MiniLM-L6-v2"
    assert bridge.config.metrics["stitched_accuracy"] == pytest.approx(
        cells[("MiniLM", "mpnet", "irp")]["accuracy"], abs=1e-4
    )
    card = (out / "bridge-minilm-to-mpnet" / "README.md").read_text()
    assert "sentence-transformers/all-mpnet-base-v2" in card
    stitched = StitchedModel.from_pretrained(out / "stitched-minilm-to-mpnet-topics")
    assert set(stitched.config.id2label.values()) >= {"sports", "food", "science"}
    assert (out / "stitched-minilm-to-mpnet-topics" / "README.md").is_file()
