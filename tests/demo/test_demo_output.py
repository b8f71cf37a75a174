"""The demo never replaces a folder holding files it did not write (fast: refused before any compute)."""

from __future__ import annotations

import pytest

from hf_latent_bridge import OutputExistsError
from hf_latent_bridge.demo.run import MARKER, _written_by_the_demo, run_demo


def test_a_folder_with_the_users_files_is_refused_without_overwrite(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"is not empty; pass overwrite \(--overwrite\)"):
        run_demo(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_only_a_previous_runs_output_counts_as_the_demos_own(tmp_path):
    assert not _written_by_the_demo(tmp_path)
    (tmp_path / MARKER).write_text("")
    (tmp_path / "heatmap.png").write_bytes(b"")
    (tmp_path / "bridge-minilm-to-mpnet").mkdir()
    assert _written_by_the_demo(tmp_path)
    (tmp_path / "my-results.csv").write_text("a,b\n")
    assert not _written_by_the_demo(tmp_path)
