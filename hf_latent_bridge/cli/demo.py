"""``hf-latent-bridge demo``: the offline demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..demo.run import DEFAULT_TEXT, run_demo
from .app import app


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the demo's outputs.")] = Path(
        "demo_output"
    ),
    num_anchors: Annotated[
        int | None,
        typer.Option("--num-anchors", "-k", min=2, help="Anchors (default: the whole train split)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Embedding batch size.")] = 64,
    text: Annotated[str, typer.Option(help="Sentence shown through the stitched pipeline.")] = DEFAULT_TEXT,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a folder holding files the demo did not write.")
    ] = False,
) -> None:
    """Offline demo: MiniLM <-> mpnet bridges on the ChatterBot topics, the stitching table, a heatmap,
    a saved bridge with its model card, and one stitched prediction."""
    typer.echo(
        run_demo(
            output, num_anchors=num_anchors, batch_size=batch_size, text=text, overwrite=overwrite
        ).report()
    )
