"""The ``hf-latent-bridge`` command line: fit, eval, predict and demo, thin over the library.

Every failure ends as one line on stderr (``error: ...``) and a non-zero exit code; set
``HF_LATENT_BRIDGE_DEBUG=1`` to see the traceback instead. Outputs are written to a temporary sibling
and renamed into place, so an interrupted or failed run leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click as typer._click; older versions use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from .alignment import METHODS
from .anchors import STRATEGIES
from .projection import DEFAULT_WHITENING

DEBUG_ENV = "HF_LATENT_BRIDGE_DEBUG"
DEMO_TEXT = "Do you like to play basketball?"  # keep equal to hf_latent_bridge.demo.DEFAULT_TEXT
LOCAL_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def staged_directory(output: Path, overwrite: bool) -> Any:
    """:func:`hf_latent_bridge.evaluation.staged_directory` (refuses unwritable or non-empty outputs)."""
    from .evaluation import staged_directory as stage

    return stage(output, overwrite)


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown option, missing argument...) as one line instead of a boxed panel."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **kwargs: Any) -> Any:
        standalone = kwargs.pop("standalone_mode", True)
        try:
            result = super().main(args=args, prog_name=prog_name, standalone_mode=False, **kwargs)
        except click_exceptions.UsageError as error:
            hint = f" (see: {error.ctx.command_path} --help)" if error.ctx is not None else ""
            _fail(f"{error.format_message()}{hint}", error.exit_code, standalone)
            return None
        except click_exceptions.ClickException as error:
            _fail(error.format_message(), error.exit_code, standalone)
            return None
        except typer.Abort:
            _fail("aborted.", 1, standalone)
            return None
        except typer.Exit as exit_:
            result = exit_.exit_code
        code = result if isinstance(result, int) else 0
        if standalone:
            sys.exit(code)
        return result


def _fail(message: str, code: int, standalone: bool) -> None:
    typer.echo(f"error: {_one_line(message)}", err=True)
    if standalone:
        sys.exit(code)
    raise typer.Exit(code)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


app = typer.Typer(
    name="hf-latent-bridge",
    cls=_OneLineErrors,
    help="Translate embeddings between encoders (inverse relative projection), and judge the result.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _errors_as_one_line(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any exception of a command into ``error: ...`` on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # weight loading is quick; keep stderr for our bars
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, click_exceptions.UsageError):
            raise
        except KeyboardInterrupt:
            typer.echo("error: interrupted; nothing was written.", err=True)
            raise typer.Exit(130) from None
        except Exception as error:
            if os.environ.get(DEBUG_ENV):
                raise
            message = (
                str(error)
                if isinstance(error, (CliError, ValueError))
                else f"{type(error).__name__}: {error}"
            )
            typer.echo(f"error: {_one_line(message)}", err=True)
            raise typer.Exit(1) from None

    return wrapper


# ================================================================================ outputs
@contextlib.contextmanager
def staged_file(output: Path) -> Iterator[Path]:
    """Yield a temporary sibling path of ``output``, renamed onto ``output`` on success."""
    output = output.expanduser()
    parent = output.absolute().parent
    if output.is_dir():
        raise CliError(f"output {output} is a folder; give a file path to --output.")
    if not parent.is_dir():
        raise CliError(f"cannot write {output}: folder {parent} does not exist; create it first.")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{output.name}.tmp-", dir=parent)
    except OSError as error:
        raise CliError(
            f"cannot write to {parent} ({error.strerror or error}); choose a writable --output."
        ) from None
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
        os.replace(staging, output)
    finally:
        if staging.exists():
            staging.unlink()


# ================================================================================ data and encoders
def load_table(spec: str, split: str, *, config: str | None = None, revision: str | None = None) -> Any:
    """A ``datasets.Dataset``: a local file (csv/json/jsonl/parquet/txt), a saved folder, or a Hub id."""
    import datasets

    path = Path(spec).expanduser()
    try:
        if path.is_file():
            builder = LOCAL_FORMATS.get(path.suffix.lower())
            if builder is None:
                raise CliError(
                    f"cannot read {spec}: unknown file type {path.suffix!r}; use one of "
                    f"{', '.join(LOCAL_FORMATS)} or a Hub data set id."
                )
            if split != "train":
                raise CliError(
                    f"a single file has only the 'train' split, not {split!r}; pass --split train."
                )
            return datasets.load_dataset(builder, data_files=str(path), split="train")
        if path.is_dir() and (path / "dataset_info.json").is_file():
            return datasets.load_from_disk(str(path))
        if path.is_dir() and (path / "dataset_dict.json").is_file():
            loaded = datasets.load_from_disk(str(path))
            if split not in loaded:
                raise CliError(f"data set {spec} has no split {split!r} (splits: {', '.join(loaded)}).")
            return loaded[split]
        return datasets.load_dataset(spec, config, split=split, revision=revision)
    except CliError:
        raise
    except ValueError as error:
        if "split" in str(error).lower():
            raise CliError(f"data set {spec} has no split {split!r}: {_one_line(str(error))}") from None
        raise CliError(f"cannot load data set {spec!r}: {_one_line(str(error))}") from None
    except (OSError, ImportError) as error:
        raise CliError(
            f"cannot load data set {spec!r} ({type(error).__name__}: {_one_line(str(error))[:300]}); "
            "pass a local csv/json/jsonl/parquet file or a reachable Hub data set id."
        ) from None


def require_columns(dataset: Any, *columns: str | None) -> None:
    missing = [c for c in columns if c is not None and c not in dataset.column_names]
    if missing:
        raise CliError(
            f"column {missing[0]!r} is not in the data set (columns: {', '.join(dataset.column_names)}); "
            "choose one with --column / --label-column."
        )


def column_values(dataset: Any, column: str) -> Any:
    """A column as encoder inputs: strings, PIL images, or a numpy array for array features."""
    import datasets

    feature = dataset.features[column]
    if isinstance(feature, (datasets.Array2D, datasets.Array3D)):
        return dataset.with_format("numpy")[column]
    return list(dataset[column])


def load_encoder_or_fail(name: str, *, revision: str | None = None, pooling: str | None = None) -> Any:
    from .encoders import load_encoder

    try:
        return load_encoder(name, revision=revision, pooling=pooling)
    except ValueError:
        raise
    except (OSError, ImportError, KeyError) as error:
        first = _one_line(str(error)).split(". ")[0][:240]
        raise CliError(
            f"cannot load encoder {name!r} ({first}); pass a local model folder or a Hub id that is cached or reachable."
        ) from None


def _keyword_or_number(
    text: str, option: str, keywords: dict[str, Any], *, allow_zero: bool
) -> float | str | None:
    """An option that is one of ``keywords`` (mapped to their values) or a number (> 0, or >= 0)."""
    if text.lower() in keywords:
        return keywords[text.lower()]
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 if allow_zero else value > 0):  # also refuses nan
        words = ", ".join(repr(k) for k in keywords)
        number = "a number >= 0" if allow_zero else "a positive number"
        raise CliError(f"{option} must be {words} or {number}, got {text!r}.")
    return value


def _parse_ridge(ridge: str) -> float | str:
    return _keyword_or_number(ridge, "--ridge", {"auto": "auto"}, allow_zero=True)


def _parse_whitening(whitening: str) -> float | None:
    return _keyword_or_number(whitening, "--whitening", {"none": None}, allow_zero=False)


def _parse_scale(scale: str) -> float | str:
    return _keyword_or_number(scale, "--scale", {"mean": "mean", "none": "none"}, allow_zero=False)


def _check_choice(value: str, choices: Sequence[str], option: str) -> None:
    if value not in choices:
        raise CliError(f"{option} must be one of {', '.join(choices)}, got {value!r}.")


# ================================================================================ fit
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
    from .anchors import AnchorSet, select_anchors
    from .bridge import LatentBridge

    _check_choice(strategy, STRATEGIES, "--strategy")
    _check_choice(method, METHODS, "--method")
    ridge_value, scale_value = _parse_ridge(ridge), _parse_scale(scale)
    whitening_value = _parse_whitening(whitening)
    if num_anchors < 2:
        raise CliError(f"--num-anchors must be at least 2, got {num_anchors}.")
    if batch_size < 1:
        raise CliError(f"--batch-size must be at least 1, got {batch_size}.")
    if strategy == "balanced" and label_column is None:
        raise CliError("--strategy balanced needs --label-column.")
    target_column = target_column or column
    with staged_directory(output, overwrite) as staging:
        dataset = load_table(data, split, config=data_config, revision=data_revision)
        require_columns(dataset, column, target_column, label_column)
        if len(dataset) < num_anchors:
            raise CliError(
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
        from .demo import save_with_card

        save_with_card(bridge, staging)
    typer.echo(_describe_bridge(bridge, output))
    if push_to_hub:
        url = bridge.push_to_hub(repo_id=push_to_hub, private=private)
        typer.echo(f"pushed to {getattr(url, 'commit_url', None) or push_to_hub}")


def _class_ids(values: Sequence[Any]) -> list[int]:
    """Labels as class ids: integers stay, anything else is numbered in sorted order of its text."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return list(values)
    classes = {c: i for i, c in enumerate(sorted({str(v) for v in values}))}
    return [classes[str(v)] for v in values]


def _take(inputs: Any, rows: Any) -> Any:
    import numpy as np

    if isinstance(inputs, np.ndarray):
        return inputs[np.asarray(rows)]
    return [inputs[int(i)] for i in rows]


def _describe_bridge(bridge: Any, output: Path) -> str:
    config = bridge.config
    ridge = "" if config.ridge_selected is None else f", ridge {config.ridge_selected:.3g}"
    return (
        f"saved {config.method} bridge {config.source_dim} -> {config.target_dim} "
        f"({config.num_anchors} anchors{ridge}) to {output}"
    )


# ================================================================================ eval
def _parse_encoder_spec(spec: str) -> tuple[str, str, str | None]:
    """``[alias=]name_or_path[@revision]`` -> (alias, name_or_path, revision)."""
    alias, _, rest = spec.rpartition("=") if "=" in spec else ("", "", spec)
    name, revision = rest, None
    if "@" in rest and not Path(rest).exists():
        name, _, revision = rest.rpartition("@")
    if not name:
        raise CliError(f"encoder {spec!r} is empty; write [alias=]hub_id_or_folder[@revision].")
    return alias or Path(name).name or name, name, revision


@app.command("eval")
@_errors_as_one_line
def eval_command(
    encoders: Annotated[
        list[str], typer.Argument(help="Two or more encoders: [alias=]hub_id_or_folder[@revision].")
    ],
    data: Annotated[
        str, typer.Option("--data", "-d", help="Labelled data set: Hub id or local file/folder.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the matrix (json, md, png).")],
    column: Annotated[str, typer.Option(help="Input column.")] = "text",
    label_column: Annotated[str, typer.Option(help="Label column (class ids or names).")] = "label",
    train_split: Annotated[str, typer.Option(help="Split for anchors and heads.")] = "train",
    test_split: Annotated[
        str | None,
        typer.Option(help="Split to evaluate on; default: hold out --test-size of the train split."),
    ] = None,
    test_size: Annotated[float, typer.Option(help="Held-out share when there is no --test-split.")] = 0.3,
    data_config: Annotated[str | None, typer.Option(help="Configuration name of a Hub data set.")] = None,
    data_revision: Annotated[str | None, typer.Option(help="Revision of a Hub data set.")] = None,
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = "identity,procrustes,irp",
    num_anchors: Annotated[
        int | None, typer.Option("--num-anchors", "-k", help="Anchors (default: all train rows).")
    ] = None,
    strategy: Annotated[str, typer.Option(help=f"Anchor selection: {', '.join(STRATEGIES)}.")] = "balanced",
    pooling: Annotated[
        str | None, typer.Option(help="Pooling for every encoder (default: each model's own).")
    ] = None,
    curve: Annotated[
        list[str] | None, typer.Option(help="Pair 'a->b' for an accuracy-vs-anchors curve (repeatable).")
    ] = None,
    anchor_counts: Annotated[
        str | None, typer.Option(help="Comma-separated anchor counts for --curve.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use at most this many rows of each split.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split, anchors and ridge search.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Embedding batch size (also the sharding unit).")] = 32,
    chunk_size: Annotated[int, typer.Option(help="Test rows per evaluation shard.")] = 256,
    cache_dir: Annotated[Path | None, typer.Option(help="Cache embeddings here (safetensors).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
) -> None:
    """Stitching matrix of ENCODERS on a labelled data set: every (source, target, method) cell.

    Runs on several processes when launched with torchrun or `accelerate launch` (results are identical).
    """
    from .evaluation import anchor_curve, default_anchor_counts, evaluate_encoders

    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    for m in method_list:
        _check_choice(m, METHODS, "--methods")
    _check_choice(strategy, STRATEGIES, "--strategy")
    if len(encoders) < 2:
        raise CliError(f"eval needs at least 2 encoders, got {len(encoders)}.")
    specs = [_parse_encoder_spec(s) for s in encoders]
    aliases = [a for a, _, _ in specs]
    if len(set(aliases)) != len(aliases):
        raise CliError(f"encoder names repeat ({', '.join(aliases)}); name them with alias=path.")
    pairs = [_parse_pair(p, aliases) for p in curve or []]
    counts = _parse_counts(anchor_counts) if anchor_counts else None
    if not 0 < test_size < 1:
        raise CliError(f"--test-size must be between 0 and 1, got {test_size}.")
    if batch_size < 1 or chunk_size < 1:
        raise CliError(
            f"--batch-size and --chunk-size must be at least 1, got {batch_size} and {chunk_size}."
        )

    accelerator = _accelerator()
    try:
        with _maybe_staged(output, overwrite, accelerator.is_main_process) as staging:
            train_ds, test_ds = _labelled_splits(
                data,
                column,
                label_column,
                train_split,
                test_split,
                test_size,
                data_config,
                data_revision,
                seed,
                limit,
            )
            if num_anchors is not None and not 2 <= num_anchors <= len(train_ds):
                raise CliError(
                    f"--num-anchors {num_anchors} is not possible with {len(train_ds)} train rows; "
                    f"use a value between 2 and {len(train_ds)}."
                )
            loaded = {a: load_encoder_or_fail(n, revision=r, pooling=pooling) for a, n, r in specs}
            train_labels, test_labels, id2label = _labels(train_ds, test_ds, label_column)
            matrix, train, test = evaluate_encoders(
                loaded,
                column_values(train_ds, column),
                column_values(test_ds, column),
                train_labels,
                test_labels,
                batch_size=batch_size,
                cache_dir=cache_dir,
                accelerator=accelerator,
                methods=method_list,
                num_anchors=num_anchors,
                anchor_strategy=strategy,
                seed=seed,
                id2label=id2label,
                chunk_size=chunk_size,
            )
            curve_result = None
            if pairs:
                curve_result = anchor_curve(
                    train,
                    test,
                    train_labels,
                    test_labels,
                    pairs=pairs,
                    anchor_counts=counts or default_anchor_counts(len(train_labels)),
                    methods=[m for m in method_list if m != "identity"] or ["irp"],
                    anchor_strategy=strategy,
                    seed=seed,
                    id2label=id2label,
                    heads=matrix.heads,
                )
            if staging is not None:
                matrix.extra["command"] = _command_line()
                matrix.save(staging)
                if curve_result is not None:
                    from .evaluation import write_text_atomic
                    from .plotting import plot_anchor_curve

                    write_text_atomic(
                        staging / "anchor_curve.json", json.dumps(curve_result, indent=2) + "\n"
                    )
                    plot_anchor_curve(curve_result, staging / "anchor_curve.png")
        if accelerator.is_main_process:
            typer.echo(matrix.to_markdown("accuracy"))
            typer.echo(f"wrote {output}/stitching_matrix.json, stitching_matrix.md, heatmap.png")
    finally:
        accelerator.end_training()


def _accelerator() -> Any:
    import torch
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())


@contextlib.contextmanager
def _maybe_staged(output: Path, overwrite: bool, main: bool) -> Iterator[Path | None]:
    if not main:
        from .evaluation import check_output_dir

        check_output_dir(output, overwrite)  # every process fails alike, so none waits in a gather
        yield None
        return
    with staged_directory(output, overwrite) as staging:
        yield staging


def _parse_pair(text: str, aliases: Sequence[str]) -> tuple[str, str]:
    source, sep, target = text.partition("->")
    source, target = source.strip(), target.strip()
    if not sep or source not in aliases or target not in aliases or source == target:
        raise CliError(
            f"--curve {text!r} must be 'a->b' with two different encoders among {', '.join(aliases)}."
        )
    return source, target


def _parse_counts(text: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 2:
        raise CliError(f"--anchor-counts must be comma-separated integers >= 2, got {text!r}.")
    return counts


def _labelled_splits(
    data: str,
    column: str,
    label_column: str,
    train_split: str,
    test_split: str | None,
    test_size: float,
    config: str | None,
    revision: str | None,
    seed: int,
    limit: int | None,
) -> tuple[Any, Any]:
    train = load_table(data, train_split, config=config, revision=revision)
    require_columns(train, column, label_column)
    if test_split is not None:
        test = load_table(data, test_split, config=config, revision=revision)
        require_columns(test, column, label_column)
    else:
        if len(train) < 4:
            raise CliError(
                f"the data set has {len(train)} rows; at least 4 are needed to hold out a test split."
            )
        stratify = label_column if _is_class_label(train, label_column) else None
        parts = train.train_test_split(test_size=test_size, seed=seed, stratify_by_column=stratify)
        train, test = parts["train"], parts["test"]
    if limit is not None:
        train, test = train.select(range(min(limit, len(train)))), test.select(range(min(limit, len(test))))
    return train, test


def _is_class_label(dataset: Any, column: str) -> bool:
    import datasets

    return isinstance(dataset.features[column], datasets.ClassLabel)


def _labels(train: Any, test: Any, column: str) -> tuple[Any, Any, dict[int, str]]:
    """Class ids for both splits, and id2label (ClassLabel names, or sorted distinct raw labels)."""
    import torch

    feature = train.features[column]
    if _is_class_label(train, column):
        names = list(feature.names)
        return torch.tensor(train[column]), torch.tensor(test[column]), dict(enumerate(names))
    raw_train, raw_test = list(train[column]), list(test[column])
    classes = sorted({str(v) for v in raw_train})
    index = {c: i for i, c in enumerate(classes)}
    unseen = sorted({str(v) for v in raw_test} - set(index))
    if unseen:
        raise CliError(
            f"test labels {unseen[:5]} never occur in the train split; every class needs train rows."
        )
    return (
        torch.tensor([index[str(v)] for v in raw_train]),
        torch.tensor([index[str(v)] for v in raw_test]),
        dict(enumerate(classes)),
    )


def _command_line() -> str:
    return " ".join(["hf-latent-bridge", *sys.argv[1:]]) if sys.argv else "hf-latent-bridge"


# ================================================================================ predict
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
) -> None:
    """Classify every input of a file through the stitched pipeline; write one JSON object per line."""
    if top_k < 1:
        raise CliError(f"--top-k must be at least 1, got {top_k}.")
    if batch_size < 1:
        raise CliError(f"--batch-size must be at least 1, got {batch_size}.")
    texts = read_inputs(inputs, column)
    stage = contextlib.nullcontext(None) if output == "-" else staged_file(Path(output))
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


def read_inputs(path: Path, column: str) -> list[str]:
    """Inputs from a text file (one per non-empty line) or a JSON lines file (field ``column``)."""
    if not path.is_file():
        raise CliError(f"input file {path} does not exist; pass a text or .jsonl file.")
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read {path}: {error}") from None
    lines = [line for line in content.splitlines() if line.strip()]
    if path.suffix.lower() != ".jsonl":
        values = [line.strip() for line in lines]
    else:
        values = []
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise CliError(
                    f"{path} line {number} is not JSON ({error.msg}); write one object per line."
                ) from None
            if not isinstance(record, dict) or column not in record:
                raise CliError(
                    f"{path} line {number} has no field {column!r}; choose the field with --column."
                )
            values.append(str(record[column]))
    if not values:
        raise CliError(f"{path} holds no inputs; write one input per line.")
    return values


def _stitched_pipeline(model: str, source_encoder: str | None) -> Any:
    from transformers import pipeline

    from .pipeline import register

    register()

    kwargs: dict[str, Any] = {}
    if source_encoder is not None:
        kwargs["source_encoder"] = load_encoder_or_fail(source_encoder)
    try:
        return pipeline("stitched-classification", model=model, **kwargs)
    except ValueError:
        raise
    except OSError as error:
        raise CliError(
            f"cannot load stitched model {model!r} ({_one_line(str(error))[:240]}); pass a folder saved with "
            "StitchedModel.save_pretrained or a reachable Hub id."
        ) from None


# ================================================================================ demo
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
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = True,
) -> None:
    """Offline demo: MiniLM <-> mpnet bridges on the ChatterBot topics, the stitching table, a heatmap,
    a saved bridge with its model card, and one stitched prediction."""
    from .demo import run_demo

    result = run_demo(output, num_anchors=num_anchors, batch_size=batch_size, text=text, overwrite=overwrite)
    typer.echo(result.report())


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
