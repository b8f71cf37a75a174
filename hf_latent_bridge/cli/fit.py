"""``hf-latent-bridge fit``: a bridge from two encoders and a data set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from . import options as opt
from .app import app


@app.command()
def fit(
    source: opt.Source,
    target: opt.Target,
    data: opt.Data,
    output: opt.OutputFolder,
    text_column: opt.Column = "text",
    target_column: opt.TargetColumn = None,
    label_column: Annotated[str | None, typer.Option(help="Label column (for balanced anchors).")] = None,
    split: opt.Split = "train",
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
    """Fit a bridge from SOURCE to TARGET on anchors drawn from a data set, and save it to a folder."""
    opt.fit_save_push(dict(locals()), train_head=False, describe=lambda bridge: _describe(bridge, output))


def _describe(bridge: Any, output: Path) -> str:
    config = bridge.config
    ridge = "" if config.ridge_selected is None else f", ridge {config.ridge_selected:.3g}"
    method = f"{config.method_selected} (auto)" if config.method == "auto" else config.method
    return (
        f"saved {method} bridge {config.source_dim} -> {config.target_dim} "
        f"({config.num_anchors} anchors{ridge}) to {output}"
    )
