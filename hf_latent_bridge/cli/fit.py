"""``hf-latent-bridge fit``: a bridge from two encoders and a data set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.alignment import METHODS
from ..core.anchors import STRATEGIES
from ..core.options import check_method, check_positive_int, check_strategy
from ..core.projection import DEFAULT_WHITENING
from ..encoding.tables import _class_ids, _take, column_values, load_table, require_columns
from ..files import staged_directory
from .app import UsageError, _errors_as_one_line, app
from .options import load_encoder_or_fail, parse_ridge, parse_scale, parse_whitening


@app.command()
@_errors_as_one_line
def fit(
    source: Annotated[str, typer.Argument(help="Source encoder: Hub id or local model folder.")],
    target: Annotated[str, typer.Argument(help="Target encoder: Hub id or local model folder.")],
    data: Annotated[
        str, typer.Option("--data", "-d", help="Anchor data: Hub data set id or a local file/folder.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the bridge to.")],
    column: Annotated[str, typer.Option(help="Input column embedded by the source encoder.")] = "text",
    target_column: Annotated[
        str | None,
        typer.Option(help="Input column for the target encoder (default: --column); for cross-modal pairs."),
    ] = None,
    label_column: Annotated[
        str | None, typer.Option(help="Label column (needed by --strategy balanced).")
    ] = None,
    split: Annotated[str, typer.Option(help="Split of the anchor data set.")] = "train",
    data_config: Annotated[str | None, typer.Option(help="Configuration name of a Hub data set.")] = None,
    data_revision: Annotated[str | None, typer.Option(help="Revision of a Hub data set.")] = None,
    num_anchors: Annotated[
        int, typer.Option("--num-anchors", "-k", help="Number of anchors to select.")
    ] = 1000,
    strategy: Annotated[str, typer.Option(help=f"Anchor selection: {', '.join(STRATEGIES)}.")] = "uniform",
    method: Annotated[str, typer.Option(help=f"Translation method: {', '.join(METHODS)}.")] = "irp",
    ridge: Annotated[str, typer.Option(help="IRP ridge: 'auto' or a number >= 0.")] = "auto",
    scale: Annotated[str, typer.Option(help="IRP output norm: 'mean', 'none' or a number.")] = "mean",
    whitening: Annotated[
        str, typer.Option(help="IRP shrinkage whitening of both sides: a number > 0, or 'none' (plain IRP).")
    ] = str(DEFAULT_WHITENING),
    source_revision: Annotated[str | None, typer.Option(help="Revision of the source encoder.")] = None,
    target_revision: Annotated[str | None, typer.Option(help="Revision of the target encoder.")] = None,
    source_pooling: Annotated[
        str | None, typer.Option(help="Source pooling, e.g. mean, cls, mean+norm.")
    ] = None,
    target_pooling: Annotated[
        str | None, typer.Option(help="Target pooling, e.g. mean, cls, mean+norm.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the anchor selection and ridge search.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Embedding batch size.")] = 32,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
    push_to_hub: Annotated[str | None, typer.Option(help="Also push the bridge to this Hub repo id.")] = None,
    private: Annotated[
        bool, typer.Option(help="Create the Hub repo as private (with --push-to-hub).")
    ] = False,
) -> None:
    """Fit a bridge from SOURCE to TARGET on anchors drawn from a data set, and save it to a folder."""
    from ..core.anchor_set import AnchorSet
    from ..core.anchors import select_anchors
    from ..models.bridge import LatentBridge

    check_strategy(strategy, "--strategy")
    check_method(method, "--method")
    ridge_value, scale_value = parse_ridge(ridge), parse_scale(scale)
    whitening_value = parse_whitening(whitening)
    if num_anchors < 2:
        raise UsageError(f"--num-anchors must be at least 2, got {num_anchors}.")
    check_positive_int("--batch-size", batch_size)
    if strategy == "balanced" and label_column is None:
        raise UsageError("--strategy balanced needs --label-column.")
    target_column = target_column or column
    with staged_directory(output, overwrite) as staging:
        dataset = load_table(data, split, config=data_config, revision=data_revision)
        require_columns(dataset, column, target_column, label_column)
        if len(dataset) < num_anchors:
            raise UsageError(
                f"the data set has {len(dataset)} rows in split {split!r}, fewer than the {num_anchors} anchors "
                f"requested; lower --num-anchors to at most {len(dataset)} or use a larger data set."
            )
        source_encoder = load_encoder_or_fail(source, revision=source_revision, pooling=source_pooling)
        target_encoder = load_encoder_or_fail(target, revision=target_revision, pooling=target_pooling)
        source_inputs = column_values(dataset, column)
        target_inputs = source_inputs if target_column == column else column_values(dataset, target_column)
        if strategy == "farthest":
            candidates = source_encoder.embed(source_inputs, batch_size=batch_size, show_progress=True)
            rows = select_anchors("farthest", num_anchors, embeddings=candidates, seed=seed)
            source_anchors = candidates[rows]
        else:
            labels = _class_ids(dataset[label_column]) if label_column else None
            rows = select_anchors(strategy, num_anchors, num_rows=len(dataset), labels=labels, seed=seed)
            source_anchors = source_encoder.embed(
                _take(source_inputs, rows), batch_size=batch_size, show_progress=True
            )
        target_anchors = target_encoder.embed(
            _take(target_inputs, rows), batch_size=batch_size, show_progress=True
        )
        anchor_set = AnchorSet(
            dataset=data,
            indices=tuple(int(i) for i in rows),
            revision=data_revision,
            split=split,
            column=column,
            extra={
                "strategy": strategy,
                "seed": seed,
                "data_config": data_config,
                "target_column": target_column,
            },
        )
        bridge = LatentBridge.fit(
            source_anchors,
            target_anchors,
            method,
            ridge=ridge_value,
            scale=scale_value,
            whitening=whitening_value,
            seed=seed,
            source_encoder=source_encoder.ref,
            target_encoder=target_encoder.ref,
            anchor_set=anchor_set,
        )
        from ..demo.run import save_with_card

        save_with_card(bridge, staging)
    typer.echo(_describe_bridge(bridge, output))
    if push_to_hub:
        url = bridge.push_to_hub(repo_id=push_to_hub, private=private)
        typer.echo(f"pushed to {getattr(url, 'commit_url', None) or push_to_hub}")


def _describe_bridge(bridge: Any, output: Path) -> str:
    config = bridge.config
    ridge = "" if config.ridge_selected is None else f", ridge {config.ridge_selected:.3g}"
    return (
        f"saved {config.method} bridge {config.source_dim} -> {config.target_dim} "
        f"({config.num_anchors} anchors{ridge}) to {output}"
    )
