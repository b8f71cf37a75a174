"""``hf-latent-bridge check-head``: is a classifier head scale-invariant (and safe behind IRP)?"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from . import options as opt
from .app import app, command_line

#: Exit code of ``--strict`` when the head is not safe behind IRP.
NOT_SAFE_EXIT_CODE = 2


@app.command("check-head")
def check_head_command(
    head: Annotated[
        str,
        typer.Argument(help="A ClassificationHead folder, or a transformers classifier (Hub id or folder)."),
    ],
    data: Annotated[str, typer.Option("--data", "-d", help="Data to embed: Hub data set id or local file.")],
    encoder: Annotated[
        str | None,
        typer.Option(help="Encoder whose embeddings the head takes (default: the one it records)."),
    ] = None,
    encoder_revision: Annotated[str | None, typer.Option(help="Revision of --encoder.")] = None,
    pooling: Annotated[str | None, typer.Option(help="Pooling of --encoder (default: the head's).")] = None,
    revision: Annotated[str | None, typer.Option(help="Revision of a Hub classifier HEAD.")] = None,
    column: Annotated[str, typer.Option(help="Input column.")] = "text",
    label_column: Annotated[
        str, typer.Option(help="Label column (class ids, or the head's names).")
    ] = "label",
    no_labels: Annotated[bool, typer.Option("--no-labels", help="Judge on agreement alone.")] = False,
    split: Annotated[str, typer.Option(help="Split of the data set.")] = "train",
    data_config: opt.DataConfig = None,
    data_revision: opt.DataRevision = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Use a seeded sample of at most this many rows.")
    ] = 2000,
    centre: Annotated[
        Literal["mean", "origin", "both"],
        typer.Option(help="Rescale about the data mean (as IRP), the origin, or both."),
    ] = "both",
    seed: Annotated[int, typer.Option(min=0, help="Seed of the sample and of the random factors.")] = 0,
    batch_size: opt.BatchSize = 32,
    cache_dir: opt.CacheDir = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write scale_invariance.{json,md,png} here.")
    ] = None,
    overwrite: opt.Overwrite = False,
    strict: Annotated[
        bool, typer.Option(help=f"Exit with {NOT_SAFE_EXIT_CODE} if not safe behind IRP.")
    ] = False,
) -> None:
    """Rescale embeddings by 0.1-10x (and per-sample factors) and report how the head's decisions change.

    Embeds a sample of DATA with the head's encoder, then per rescaling: share of predictions unchanged,
    accuracy, logit-margin ratio, and a verdict (scale-invariant within 0.5-2x? safe behind IRP, which sets
    every norm to the mean norm about the data mean?).
    """
    from ..core.scale_invariance import check_head
    from ..encoding.embed import embed_inputs
    from ..encoding.loading import load_encoder
    from ..encoding.tables import column_values, load_table, require_columns
    from ..errors import BridgeInputError
    from ..evaluation.scale_report import scale_markdown, write_scale_reports
    from ..files import staged_folder

    centres = ("mean", "origin") if centre == "both" else (centre,)
    with staged_folder(output, overwrite=overwrite) if output else contextlib.nullcontext() as staging:
        classifier = opt.load_head(head, revision)
        table = load_table(data, split, config=data_config, revision=data_revision)
        require_columns(table, column, None if no_labels else label_column)
        if limit is not None and len(table) > limit:
            table = table.shuffle(seed=seed).select(range(limit))
        recorded = classifier.config.encoder or {}
        name = encoder or recorded.get("name_or_path")
        if not name:
            raise BridgeInputError(
                f"{head} records no encoder; pass --encoder (the model the head was trained on)."
            )
        loaded = load_encoder(
            name,
            revision=encoder_revision if encoder else recorded.get("revision"),
            pooling=pooling or classifier.pooling or recorded.get("pooling"),
        )
        if loaded.dim != classifier.input_dim:  # before embedding anything
            raise BridgeInputError(
                f"{name} gives {loaded.dim}-dimensional embeddings but the head takes {classifier.input_dim}; pass "
                "the encoder the head was trained on with --encoder (and --pooling)."
            )
        embeddings = embed_inputs(
            loaded, column_values(table, column), batch_size=batch_size, cache_dir=cache_dir
        )
        labels = (
            None if no_labels else _class_ids(table[label_column], table.features[label_column], classifier)
        )
        reports = {c: check_head(classifier, embeddings, labels, centre=c, seed=seed) for c in centres}
        typer.echo(scale_markdown(reports, f"Scale invariance of {head} on {len(embeddings)} rows of {data}"))
        if staging is not None:
            extra = {"head": head, "encoder": loaded.ref.to_dict(), "data": data, "command": command_line()}
            write_scale_reports(reports, staging, title=f"Scale invariance of {head}", extra=extra)
    if output is not None:
        typer.echo(
            f"wrote {output}/scale_invariance.json, scale_invariance.md, scale_invariance.png", err=True
        )
    if strict and not reports[centres[0]].irp_safe:
        raise typer.Exit(NOT_SAFE_EXIT_CODE)


def _class_ids(values: Any, feature: Any, head: Any) -> list[int]:
    """A label column as the head's class ids: names through the head's labels, ids as they are."""
    from ..errors import BridgeInputError

    names = getattr(feature, "names", None)
    values = (
        [names[v] for v in values] if names is not None and set(names) <= set(head.label2id) else list(values)
    )
    ids = [head.label2id.get(v, -1) if isinstance(v, str) else v for v in values]
    for value, i in zip(values, ids, strict=True):
        if not (isinstance(i, int) and 0 <= i < head.config.num_labels):
            raise BridgeInputError(
                f"label {value!r} is not one of the head's classes (ids 0..{head.config.num_labels - 1} or names "
                f"{', '.join(list(head.label2id)[:10])}); pass --no-labels to judge on agreement alone."
            )
    return ids
