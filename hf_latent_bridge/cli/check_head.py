"""``hf-latent-bridge check-head``: is a classifier head scale-invariant (and safe behind IRP)?"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.options import check_positive_int
from ..errors import DataError
from ..files import staged_directory
from .app import UsageError, _command_line, _errors_as_one_line, app

#: Exit code of ``--strict`` when the head is not safe behind IRP.
NOT_SAFE_EXIT_CODE = 2


@app.command("check-head")
@_errors_as_one_line
def check_head_command(
    head: Annotated[
        str,
        typer.Argument(
            help="A ClassificationHead folder (save_pretrained), or a transformers classifier (Hub id or "
            "folder) whose final linear layer is the head."
        ),
    ],
    data: Annotated[
        str, typer.Option("--data", "-d", help="Data to embed: Hub data set id or local file/folder.")
    ],
    encoder: Annotated[
        str | None,
        typer.Option(
            help="Encoder whose embeddings the head takes (Hub id or folder). Default: the encoder the head "
            "records, or the classifier's own base model."
        ),
    ] = None,
    encoder_revision: Annotated[str | None, typer.Option(help="Revision of --encoder.")] = None,
    pooling: Annotated[
        str | None, typer.Option(help="Pooling of --encoder (default: the one the head records).")
    ] = None,
    revision: Annotated[str | None, typer.Option(help="Revision of a Hub classifier HEAD.")] = None,
    column: Annotated[str, typer.Option(help="Input column.")] = "text",
    label_column: Annotated[
        str, typer.Option(help="Label column (class ids, or names the head knows).")
    ] = "label",
    no_labels: Annotated[
        bool, typer.Option("--no-labels", help="The data has no labels: judge on agreement alone.")
    ] = False,
    split: Annotated[str, typer.Option(help="Split of the data set.")] = "train",
    data_config: Annotated[str | None, typer.Option(help="Configuration name of a Hub data set.")] = None,
    data_revision: Annotated[str | None, typer.Option(help="Revision of a Hub data set.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use a seeded sample of at most this many rows.")] = 2000,
    centre: Annotated[
        str, typer.Option(help="Rescale about the data 'mean' (what IRP does), the 'origin', or 'both'.")
    ] = "both",
    seed: Annotated[int, typer.Option(help="Seed of the sample and of the random factors.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Embedding batch size.")] = 32,
    cache_dir: Annotated[Path | None, typer.Option(help="Cache embeddings here (safetensors).")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write scale_invariance.{json,md,png} into this folder."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
    strict: Annotated[
        bool,
        typer.Option(help=f"Exit with code {NOT_SAFE_EXIT_CODE} when the head is not safe behind IRP."),
    ] = False,
) -> None:
    """Rescale embeddings by 0.1-10x (and per-sample factors) and report how the head's decisions change.

    Embeds a sample of DATA with the head's encoder, then per rescaling: share of predictions unchanged,
    accuracy, logit-margin ratio, and a verdict (scale-invariant within 0.5-2x? safe behind IRP, which sets
    every norm to the mean norm about the data mean?).
    """
    from ..encoding.embed import embed_inputs
    from ..encoding.loading import load_encoder
    from ..encoding.tables import column_values, load_table, require_columns
    from ..evaluation.scale_check import check_head, scale_markdown, write_scale_reports

    centres = {"both": ("mean", "origin"), "mean": ("mean",), "origin": ("origin",)}.get(centre)
    if centres is None:
        raise UsageError(f"--centre must be 'mean', 'origin' or 'both', got {centre!r}.")
    check_positive_int("--batch-size", batch_size)
    if limit is not None:
        check_positive_int("--limit", limit)
    stage = staged_directory(output, overwrite) if output is not None else contextlib.nullcontext(None)
    with stage as staging:
        classifier_head, recorded = _load_head(head, revision)
        table = load_table(data, split, config=data_config, revision=data_revision)
        require_columns(table, column, None if no_labels else label_column)
        if limit is not None and len(table) > limit:
            table = table.shuffle(seed=seed).select(range(limit))
        labels = None if no_labels else _class_ids(table, label_column, classifier_head)
        name = encoder or (recorded or {}).get("name_or_path")
        if not name:
            raise UsageError(
                f"{head} records no encoder; pass --encoder (the model whose embeddings the head was trained on)."
            )
        loaded = load_encoder(
            name,
            revision=encoder_revision if encoder else (recorded or {}).get("revision"),
            pooling=pooling or getattr(classifier_head, "pooling", None) or (recorded or {}).get("pooling"),
        )
        if loaded.dim != classifier_head.input_dim:
            raise UsageError(
                f"{name} gives {loaded.dim}-dimensional embeddings but the head takes {classifier_head.input_dim}; "
                "pass the encoder the head was trained on with --encoder (and --pooling)."
            )
        embeddings = embed_inputs(
            loaded, column_values(table, column), batch_size=batch_size, cache_dir=cache_dir, desc="embedding"
        )
        reports = check_head(classifier_head, embeddings, labels, centres=centres, seed=seed)
        typer.echo(scale_markdown(reports, f"Scale invariance of {head} on {len(embeddings)} rows of {data}"))
        if staging is not None:
            extra = {"head": head, "encoder": loaded.ref.to_dict(), "data": data, "command": _command_line()}
            write_scale_reports(reports, staging, title=f"Scale invariance of {head}", extra=extra)
    if output is not None:
        typer.echo(
            f"wrote {output}/scale_invariance.json, scale_invariance.md, scale_invariance.png", err=True
        )
    if strict and not reports.get("mean", next(iter(reports.values()))).irp_safe:
        raise typer.Exit(NOT_SAFE_EXIT_CODE)


def _load_head(spec: str, revision: str | None) -> tuple[Any, dict[str, Any] | None]:
    """The head and the encoder it records (as a dict): a saved ClassificationHead or a classifier's."""
    from ..models.classifier_head import head_from_classifier
    from ..models.head import ClassificationHead

    folder = Path(spec)
    if (folder / "head_config.json").is_file() or _config_model_type(folder) == _head_model_type():
        loaded = ClassificationHead.from_pretrained(folder)
    else:
        loaded = head_from_classifier(spec, revision=revision)
    recorded = getattr(loaded, "encoder", None)
    if recorded is None:  # newer heads keep it in their config
        recorded = getattr(getattr(loaded, "config", None), "encoder", None)
    if recorded is not None and not isinstance(recorded, dict):
        recorded = recorded.to_dict()
    return loaded, recorded


def _head_model_type() -> str | None:
    from ..models.head import ClassificationHead

    return getattr(getattr(ClassificationHead, "config_class", None), "model_type", None)


def _config_model_type(folder: Path) -> str | None:
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None


def _class_ids(table: Any, column: str, head: Any) -> list[int]:
    """The label column as the head's class ids: ids as they are, names through the head's labels."""
    import datasets

    feature = table.features[column]
    values = list(table[column])
    if isinstance(feature, datasets.ClassLabel):
        names = list(feature.names)
        if set(names) <= set(head.id2label.values()):
            values = [names[v] for v in values]
    label2id = {str(name): i for i, name in head.id2label.items()}
    ids = []
    for value in values:
        if isinstance(value, str):
            if value not in label2id:
                raise DataError(
                    f"label {value!r} is not one of the head's classes ({', '.join(list(label2id)[:10])}...); "
                    "use the head's class names or ids, or pass --no-labels."
                )
            ids.append(label2id[value])
        elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < head.num_labels:
            ids.append(value)
        else:
            raise DataError(
                f"label {value!r} is not a class id of the head (0..{head.num_labels - 1}) or a class name; "
                "pass --no-labels to judge on agreement alone."
            )
    return ids
