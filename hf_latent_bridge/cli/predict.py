"""``hf-latent-bridge predict``: classify a file of inputs with a stitched model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from . import options as opt
from .app import app


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="Stitched model folder or Hub id (bridge + head).")],
    inputs: Annotated[Path, typer.Argument(help="Inputs: a text file (one per line) or a .jsonl file.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="JSON lines file to write ('-': stdout).")
    ] = "-",
    column: Annotated[str, typer.Option(help="Input field of a .jsonl file.")] = "text",
    source_encoder: Annotated[
        str | None, typer.Option(help="Source encoder folder/id to use instead of the one recorded in MODEL.")
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Number of labels per input.")] = 1,
    batch_size: opt.BatchSize = 32,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --output file.")] = False,
) -> None:
    """Classify every input of a file through the stitched pipeline; write one JSON object per line."""
    from ..encoding.tables import read_inputs
    from ..files import check_file_target, write_text

    if output != "-":
        check_file_target(output, overwrite)  # before any compute
    texts = read_inputs(inputs, column)
    results = _stitched_pipeline(model, source_encoder)(texts, top_k=top_k, batch_size=batch_size)
    text = "".join(
        json.dumps({"input": x, "predictions": [_rounded(p) for p in r]}, ensure_ascii=False) + "\n"
        for x, r in zip(texts, results, strict=True)
    )
    if output == "-":
        typer.echo(text, nl=False)
    else:
        write_text(output, text, overwrite=overwrite)
        typer.echo(f"wrote {len(texts)} predictions to {output}", err=True)


def _rounded(prediction: dict[str, Any]) -> dict[str, Any]:
    return {"label": prediction["label"], "score": round(prediction["score"], 6)}


def _stitched_pipeline(model: str, source_encoder: str | None) -> Any:
    from transformers import pipeline

    from ..encoding.loading import load_encoder
    from ..errors import BridgeInputError
    from ..models.configs import StitchedConfig

    config = opt.read_auto_config(model, "a folder written by 'hf-latent-bridge stitch'")
    if not isinstance(config, StitchedConfig):
        raise BridgeInputError(
            f"{model} is a {config.model_type} model, not a stitched classifier (bridge + head): make one with "
            "hf-latent-bridge stitch SOURCE TARGET -d DATA --label-column LABEL -o OUT"
        )
    extra = (
        {} if source_encoder is None else {"source_encoder": load_encoder(source_encoder), "strict": False}
    )
    return pipeline("stitched-classification", model=model, **extra)
