"""``hf-latent-bridge predict``: classify a file of inputs with a stitched model."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.options import check_positive_int
from ..encoding.tables import read_inputs
from ..files import check_output_file, staged_file
from .app import UsageError, _errors_as_one_line, app
from .options import read_auto_config


@app.command()
@_errors_as_one_line
def predict(
    model: Annotated[str, typer.Argument(help="Stitched model folder or Hub id (bridge + head).")],
    inputs: Annotated[Path, typer.Argument(help="Inputs: a text file (one per line) or a .jsonl file.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="JSON lines file to write ('-' for stdout).")
    ] = "-",
    column: Annotated[str, typer.Option(help="Input field of a .jsonl file.")] = "text",
    source_encoder: Annotated[
        str | None, typer.Option(help="Source encoder folder/id to use instead of the one recorded in MODEL.")
    ] = None,
    top_k: Annotated[int, typer.Option(help="Number of labels per input.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 32,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --output file.")] = False,
) -> None:
    """Classify every input of a file through the stitched pipeline; write one JSON object per line."""
    check_positive_int("--top-k", top_k)
    check_positive_int("--batch-size", batch_size)
    if output != "-":
        check_output_file(output, overwrite)  # before any compute
    texts = read_inputs(inputs, column)
    stage = contextlib.nullcontext(None) if output == "-" else staged_file(Path(output), overwrite=overwrite)
    with stage as staging:
        classifier = _stitched_pipeline(model, source_encoder)
        results = classifier(texts, top_k=top_k, batch_size=batch_size)
        lines = [
            json.dumps({"input": x, "predictions": _as_list(r)}, ensure_ascii=False)
            for x, r in zip(texts, results, strict=True)
        ]
        text = "\n".join(lines) + "\n"
        if staging is None:
            typer.echo(text, nl=False)
        else:
            staging.write_text(text, encoding="utf-8")
    if output != "-":
        typer.echo(f"wrote {len(lines)} predictions to {output}", err=True)


def _as_list(result: Any) -> list[dict[str, Any]]:
    items = result if isinstance(result, list) else [result]
    return [{"label": r["label"], "score": round(float(r["score"]), 6)} for r in items]


def _stitched_pipeline(model: str, source_encoder: str | None) -> Any:
    from transformers import pipeline

    from ..encoding.loading import load_encoder
    from ..models.configs import LatentBridgeConfig

    config = read_auto_config(
        model, "a folder written by 'hf-latent-bridge stitch' (or StitchedModel.save_pretrained)"
    )
    if isinstance(config, LatentBridgeConfig):
        raise UsageError(
            f"{model} is a bridge (it translates embeddings), not a classifier: predict needs a stitched model "
            "(bridge + head). Make one with: hf-latent-bridge stitch SOURCE TARGET -d DATA --label-column "
            "LABEL -o OUT"
        )
    kwargs: dict[str, Any] = {}
    if (
        source_encoder is not None
    ):  # the user's explicit choice: dimension, modality and pooling still checked
        kwargs.update(source_encoder=load_encoder(source_encoder), strict=False)
    return pipeline("stitched-classification", model=model, **kwargs)
