"""``hf-latent-bridge demo``: the offline demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import _errors_as_one_line, app

DEMO_TEXT = "Do you like to play basketball?"  # keep equal to hf_latent_bridge.demo.DEFAULT_TEXT


@app.command()
@_errors_as_one_line
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the demo's outputs.")] = Path(
        "demo_output"
    ),
    num_anchors: Annotated[
        int | None, typer.Option("--num-anchors", "-k", help="Anchors (default: the whole train split).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Embedding batch size.")] = 64,
    text: Annotated[str, typer.Option(help="Sentence shown through the stitched pipeline.")] = DEMO_TEXT,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an output folder holding files the demo did not write.")
    ] = False,
) -> None:
    """Offline demo: MiniLM <-> mpnet bridges on the ChatterBot topics, the stitching table, a heatmap,
    a saved bridge with its model card, and one stitched prediction."""
    from ..demo.run import run_demo

    result = run_demo(output, num_anchors=num_anchors, batch_size=batch_size, text=text, overwrite=overwrite)
    typer.echo(result.report())
