"""``hf-latent-bridge stitch``: a stitched classifier from two encoders and labelled data, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from . import options as opt
from .app import app


@app.command()
def stitch(
    source: opt.Source,
    target: opt.Target,
    data: opt.Data,
    output: opt.OutputFolder,
    text_column: opt.Column = "text",
    label_column: Annotated[str, typer.Option(help="Label column (class ids or names).")] = "label",
    target_column: opt.TargetColumn = None,
    head: Annotated[
        str | None,
        typer.Option(help="Use this head (a ClassificationHead folder, or a classifier built on TARGET)."),
    ] = None,
    split: opt.Split = "train",
    test_split: opt.TestSplit = None,
    test_size: opt.TestSize = 0.2,
    data_config: opt.DataConfig = None,
    data_revision: opt.DataRevision = None,
    num_anchors: opt.NumAnchors = None,
    strategy: opt.Strategy = None,
    method: opt.Method = "auto",
    ridge: opt.Ridge = "auto",
    output_norm: opt.OutputNorm = "mean",
    whitening: opt.Whitening = "auto",
    source_revision: opt.SourceRevision = None,
    target_revision: opt.TargetRevision = None,
    source_pooling: opt.SourcePooling = None,
    target_pooling: opt.TargetPooling = None,
    source_id: opt.SourceId = None,
    target_id: opt.TargetId = None,
    seed: opt.Seed = 0,
    batch_size: opt.BatchSize = 32,
    cache_dir: opt.CacheDir = None,
    overwrite: opt.Overwrite = False,
    push_to_hub: opt.PushToHub = None,
    private: opt.Private = False,
) -> None:
    """Classify SOURCE's inputs with a head in TARGET's space: fit the bridge and the head on DATA, score
    them on held-out rows, and save the stitched model (run it with `predict` or the pipeline)."""
    options = dict(locals())
    options["head"] = opt.load_head(head) if head else None
    opt.fit_save_push(
        options, train_head=True, describe=lambda model: _describe(model.config.metrics, output)
    )


def _describe(metrics: dict[str, Any], output: Path) -> str:
    return (
        f"saved stitched model to {output}: stitched accuracy {metrics['stitched_accuracy']:.3f} (the head on "
        f"the target's own embeddings: {metrics['native_target_accuracy']:.3f}) on {metrics['num_samples']} "
        f"held-out rows\nrun it: hf-latent-bridge predict {output} inputs.txt -o predictions.jsonl"
    )
