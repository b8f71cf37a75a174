"""``hf-latent-bridge fit``: a bridge from two encoders and a data set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..files import staged_directory
from .app import _errors_as_one_line, app
from .options import (
    DEFAULT_WHITENING_TEXT,
    BatchSize,
    CacheDir,
    Column,
    Data,
    DataConfig,
    DataRevision,
    Method,
    Overwrite,
    Private,
    PushToHub,
    Ridge,
    Scale,
    Seed,
    Source,
    SourceId,
    SourcePooling,
    SourceRevision,
    Split,
    Strategy,
    Target,
    TargetColumn,
    TargetId,
    TargetPooling,
    TargetRevision,
    Whitening,
    bridge_options,
    push_if_asked,
    require_shareable,
)


@app.command()
@_errors_as_one_line
def fit(
    source: Source,
    target: Target,
    data: Data,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the bridge to.")],
    column: Column = "text",
    target_column: TargetColumn = None,
    label_column: Annotated[
        str | None, typer.Option(help="Label column (needed by --strategy balanced).")
    ] = None,
    split: Split = "train",
    data_config: DataConfig = None,
    data_revision: DataRevision = None,
    num_anchors: Annotated[
        int, typer.Option("--num-anchors", "-k", help="Number of anchors to select.")
    ] = 1000,
    strategy: Strategy = "uniform",
    method: Method = "irp",
    ridge: Ridge = "auto",
    scale: Scale = "mean",
    whitening: Whitening = DEFAULT_WHITENING_TEXT,
    source_revision: SourceRevision = None,
    target_revision: TargetRevision = None,
    source_pooling: SourcePooling = None,
    target_pooling: TargetPooling = None,
    source_id: SourceId = None,
    target_id: TargetId = None,
    seed: Seed = 0,
    batch_size: BatchSize = 32,
    cache_dir: CacheDir = None,
    overwrite: Overwrite = False,
    push_to_hub: PushToHub = None,
    private: Private = False,
) -> None:
    """Fit a bridge from SOURCE to TARGET on anchors drawn from a data set, and save it to a folder."""
    from ..models.from_encoders import fit_from_encoders

    options = bridge_options(method, ridge, scale, whitening)
    if push_to_hub:
        require_shareable(source, source_id, target, target_id)
    with staged_directory(output, overwrite) as staging:
        bridge = fit_from_encoders(
            source,
            target,
            data,
            text_column=column,
            target_column=target_column,
            label_column=label_column,
            train_head=False,
            split=split,
            data_config=data_config,
            data_revision=data_revision,
            num_anchors=num_anchors,
            strategy=strategy,
            source_revision=source_revision,
            target_revision=target_revision,
            source_pooling=source_pooling,
            target_pooling=target_pooling,
            source_id=source_id,
            target_id=target_id,
            batch_size=batch_size,
            cache_dir=cache_dir,
            seed=seed,
            show_progress=True,
            **options,
        ).bridge
        bridge.save_pretrained(staging)
    typer.echo(_describe_bridge(bridge, output))
    push_if_asked(bridge, push_to_hub, private)


def _describe_bridge(bridge: Any, output: Path) -> str:
    config = bridge.config
    ridge = "" if config.ridge_selected is None else f", ridge {config.ridge_selected:.3g}"
    return (
        f"saved {config.method} bridge {config.source_dim} -> {config.target_dim} "
        f"({config.num_anchors} anchors{ridge}) to {output}"
    )
