"""The options several commands share, declared once; parsing their text into library values; and
what ``--push-to-hub`` does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.alignment import METHODS
from ..core.anchors import STRATEGIES
from ..core.options import check_method, check_ridge, check_scale, check_whitening
from ..core.projection import DEFAULT_WHITENING
from ..errors import CheckpointError, UsageError

Source = Annotated[str, typer.Argument(help="Source encoder: Hub id or local model folder.")]
Target = Annotated[str, typer.Argument(help="Target encoder: Hub id or local model folder.")]
Data = Annotated[
    str,
    typer.Option(
        "--data", "-d", help="Data: a Hub data set id, or a local JSONL/CSV/Parquet file or saved folder."
    ),
]
Column = Annotated[str, typer.Option(help="Input column embedded by the source encoder.")]
TargetColumn = Annotated[
    str | None,
    typer.Option(help="Input column for the target encoder (default: --column); for cross-modal pairs."),
]
Split = Annotated[str, typer.Option(help="Split of the data set to draw anchors (and heads) from.")]
DataConfig = Annotated[str | None, typer.Option(help="Configuration name of a Hub data set.")]
DataRevision = Annotated[str | None, typer.Option(help="Revision of a Hub data set.")]
Method = Annotated[str, typer.Option(help=f"Translation method: {', '.join(METHODS)}.")]
Ridge = Annotated[str, typer.Option(help="IRP ridge: 'auto' or a number >= 0.")]
Scale = Annotated[str, typer.Option(help="IRP output norm: 'mean', 'none' or a number.")]
Whitening = Annotated[
    str, typer.Option(help="IRP shrinkage whitening of both sides: a number > 0, or 'none' (plain IRP).")
]
DEFAULT_WHITENING_TEXT = str(DEFAULT_WHITENING)
SourceRevision = Annotated[str | None, typer.Option(help="Revision of the source encoder.")]
TargetRevision = Annotated[str | None, typer.Option(help="Revision of the target encoder.")]
SourcePooling = Annotated[str | None, typer.Option(help="Source pooling, e.g. mean, cls, mean+norm.")]
TargetPooling = Annotated[str | None, typer.Option(help="Target pooling, e.g. mean, cls, mean+norm.")]
SourceId = Annotated[
    str | None,
    typer.Option(help="Hub id of the model a local SOURCE folder holds (recorded instead of the path)."),
]
TargetId = Annotated[
    str | None,
    typer.Option(help="Hub id of the model a local TARGET folder holds (recorded instead of the path)."),
]
Strategy = Annotated[str, typer.Option(help=f"Anchor selection: {', '.join(STRATEGIES)}.")]
Seed = Annotated[int, typer.Option(help="Seed of the split, the anchor selection and the ridge search.")]
BatchSize = Annotated[int, typer.Option(help="Embedding batch size.")]
CacheDir = Annotated[Path | None, typer.Option(help="Cache embeddings here (safetensors).")]
Overwrite = Annotated[bool, typer.Option(help="Replace a non-empty output folder.")]
PushToHub = Annotated[str | None, typer.Option(help="Also push the result to this Hub repo id.")]
Private = Annotated[bool, typer.Option(help="Create the Hub repo as private (with --push-to-hub).")]


def require_shareable(source: str, source_id: str | None, target: str, target_id: str | None) -> None:
    """Before any compute: an encoder given by a local folder that names no Hub model cannot be pushed."""
    from ..encoding.provenance import hub_id_of_folder

    for role, spec, hub_id in (("source", source, source_id), ("target", target, target_id)):
        local = Path(spec).expanduser()
        if hub_id is None and local.exists() and hub_id_of_folder(local) is None:
            raise UsageError(
                f"--push-to-hub needs the {role} encoder named by a Hub id, but {spec} is a local folder that "
                f"names no Hub model: pass --{role}-id namespace/name (the model it holds), or give its Hub id "
                "instead."
            )


def push_if_asked(model: Any, repo: str | None, private: bool) -> None:
    """``--push-to-hub``: push the saved model in one commit and say where it went."""
    if repo:
        commit = model.push_to_hub(repo, private=private)
        typer.echo(f"pushed to {getattr(commit, 'commit_url', None) or repo}")


def read_auto_config(spec: str, expected: str) -> Any:
    """The transformers config of a model folder or Hub id; a path that is neither, or a folder or repo
    without a readable config, is refused naming the fix (``expected``: what the command takes)."""
    from transformers import AutoConfig

    from ..encoding.provenance import is_hub_id

    if not Path(spec).expanduser().is_dir() and not is_hub_id(spec):
        raise CheckpointError(
            f"{spec} is neither a folder on this machine nor a Hub repo id ('namespace/name'); check the path."
        )
    try:
        return AutoConfig.from_pretrained(spec)
    except (OSError, ValueError) as error:
        reason = " ".join(str(error).split()).split(". ")[0][:300]
        raise CheckpointError(
            f"cannot load {spec} ({reason}); pass {expected}, or the Hub id of one that is cached or reachable."
        ) from None


def bridge_options(method: str, ridge: str, scale: str, whitening: str) -> dict[str, Any]:
    """The bridge options as :meth:`LatentBridge.fit` takes them, checked by the library's own rules."""
    return {
        "method": check_method(method, "--method"),
        "ridge": parse_ridge(ridge),
        "scale": parse_scale(scale),
        "whitening": parse_whitening(whitening),
    }


def _number_or_keyword(text: str, keywords: dict[str, Any]) -> Any:
    """``keywords[text]`` for a keyword, the number for a numeric text, else the text (the check names it)."""
    key = text.strip().lower()
    if key in keywords:
        return keywords[key]
    try:
        return float(text)
    except ValueError:
        return text


def parse_ridge(text: str) -> float | str:
    return check_ridge(_number_or_keyword(text, {"auto": "auto"}), "--ridge")


def parse_whitening(text: str) -> float | None:
    return check_whitening(_number_or_keyword(text, {"none": None}), "--whitening")


def parse_scale(text: str) -> float | str:
    return check_scale(_number_or_keyword(text, {"mean": "mean", "none": "none"}), "--scale")


def _parse_encoder_spec(spec: str) -> tuple[str, str, str | None]:
    """``[alias=]name_or_path[@revision]`` -> (alias, name_or_path, revision)."""
    alias, _, rest = spec.rpartition("=") if "=" in spec else ("", "", spec)
    name, revision = rest, None
    if "@" in rest and not Path(rest).exists():
        name, _, revision = rest.rpartition("@")
    if not name:
        raise UsageError(f"encoder {spec!r} is empty; write [alias=]hub_id_or_folder[@revision].")
    return alias or Path(name).name or name, name, revision


def _parse_pair(text: str, aliases: Sequence[str]) -> tuple[str, str]:
    source, sep, target = text.partition("->")
    source, target = source.strip(), target.strip()
    if not sep or source not in aliases or target not in aliases or source == target:
        raise UsageError(
            f"--curve {text!r} must be 'a->b' with two different encoders among {', '.join(aliases)}."
        )
    return source, target


def _parse_counts(text: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 2:
        raise UsageError(f"--anchor-counts must be comma-separated integers >= 2, got {text!r}.")
    return counts
