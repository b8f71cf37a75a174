"""The options several commands share, declared once, and what ``fit`` and ``stitch`` share: one call of
:func:`hf_latent_bridge.workflow.fit_from_encoders`, a save, and ``--push-to-hub``.

Values are checked by Typer (types, bounds) and by the library (everything else), once, where they enter.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..core.options import METHODS, STRATEGIES
from ..errors import BridgeInputError, CheckpointError


def _number_or_word(text: Any) -> Any:
    """A number when the text reads as one, else the text (the library says what it takes)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return text.strip().lower() if isinstance(text, str) else text


def _whitening(text: Any) -> Any:
    return None if str(text).strip().lower() == "none" else _number_or_word(text)


Source = Annotated[str, typer.Argument(help="Source encoder: Hub id or local model folder.")]
Target = Annotated[str, typer.Argument(help="Target encoder: Hub id or local model folder.")]
Data = Annotated[
    str,
    typer.Option(
        "--data", "-d", help="Data: a Hub data set id, or a local JSONL/CSV/Parquet file or folder."
    ),
]
OutputFolder = Annotated[Path, typer.Option("--output", "-o", help="Folder to write the result to.")]
Column = Annotated[str, typer.Option("--column", help="Input column embedded by the source encoder.")]
TargetColumn = Annotated[
    str | None,
    typer.Option(help="Input column of the target encoder (default: --column), for cross-modal pairs."),
]
Split = Annotated[str, typer.Option(help="Split of the data set to draw anchors (and heads) from.")]
TestSplit = Annotated[str | None, typer.Option(help="Split to score on (default: hold out --test-size).")]
TestSize = Annotated[float, typer.Option(help="Held-out share of the split when there is no --test-split.")]
DataConfig = Annotated[str | None, typer.Option(help="Configuration name of a Hub data set.")]
DataRevision = Annotated[str | None, typer.Option(help="Revision of a Hub data set.")]
NumAnchors = Annotated[
    int | None, typer.Option("--num-anchors", "-k", min=2, help="Anchors (default: up to 2000 train rows).")
]
Strategy = Annotated[
    str | None,
    typer.Option(
        help=f"Anchor selection: {', '.join(STRATEGIES)} (default: balanced with labels, else uniform)."
    ),
]
Method = Annotated[
    str, typer.Option(help=f"Translation method: {', '.join(METHODS)} ('auto': chosen on held-out anchors).")
]
Ridge = Annotated[Any, typer.Option(parser=_number_or_word, metavar="auto|NUMBER", help="IRP ridge (>= 0).")]
OutputNorm = Annotated[
    Any, typer.Option(parser=_number_or_word, metavar="mean|none|NUMBER", help="Norm of IRP's outputs.")
]
Whitening = Annotated[
    Any,
    typer.Option(
        parser=_whitening,
        metavar="auto|NUMBER|none",
        help="IRP's shrinkage whitening ('auto': each side's chosen on held-out anchors; 'none': plain IRP).",
    ),
]
SourceRevision = Annotated[str | None, typer.Option(help="Revision of the source encoder.")]
TargetRevision = Annotated[str | None, typer.Option(help="Revision of the target encoder.")]
SourcePooling = Annotated[str | None, typer.Option(help="Source pooling, e.g. mean, cls, mean+norm.")]
TargetPooling = Annotated[str | None, typer.Option(help="Target pooling, e.g. mean, cls, mean+norm.")]
SourceId = Annotated[str | None, typer.Option(help="Hub id of the model a local SOURCE folder holds.")]
TargetId = Annotated[str | None, typer.Option(help="Hub id of the model a local TARGET folder holds.")]
Seed = Annotated[int, typer.Option(min=0, help="Seed of the split, the anchors and the ridge search.")]
BatchSize = Annotated[int, typer.Option(min=1, help="Embedding batch size.")]
CacheDir = Annotated[Path | None, typer.Option(help="Cache embeddings here (safetensors).")]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing output.")]
PushToHub = Annotated[str | None, typer.Option(help="Also push the result to this Hub repo id.")]
Private = Annotated[bool, typer.Option(help="Create the Hub repo as private (with --push-to-hub).")]


def fit_save_push(options: dict[str, Any], *, train_head: bool, describe: Callable[[Any], str]) -> None:
    """``fit_from_encoders(**options)``, saved into a staged ``--output`` folder, described, then pushed if
    asked.

    ``options`` are a command's parameters: ``output``, ``overwrite``, ``push_to_hub`` and ``private``
    are the command's own; every other one is a keyword of :func:`fit_from_encoders`, named alike.
    """
    from ..files import staged_folder
    from ..workflow import fit_from_encoders

    output, overwrite = options.pop("output"), options.pop("overwrite")
    repo, private = options.pop("push_to_hub"), options.pop("private")
    if repo:  # before any compute: what is pushed must name its encoders by Hub ids
        for role in ("source", "target"):
            _require_hub_id(role, options[role], options[f"{role}_id"])
    with staged_folder(output, overwrite=overwrite) as staging:
        result = fit_from_encoders(**options, train_head=train_head, show_progress=True)
        artifact = result.model if train_head else result.bridge
        artifact.save_pretrained(staging)
    typer.echo(describe(artifact))
    if repo:
        commit = artifact.push_to_hub(repo, private=private)
        typer.echo(f"pushed to {getattr(commit, 'commit_url', None) or repo}")


def _require_hub_id(role: str, spec: str, hub_id: str | None) -> None:
    from ..encoding.provenance import hub_id_of_folder

    if hub_id is None and Path(spec).expanduser().exists() and hub_id_of_folder(spec) is None:
        raise BridgeInputError(
            f"--push-to-hub needs the {role} encoder named by a Hub id, but {spec} is a local folder that names "
            f"no Hub model: pass --{role}-id namespace/name (the model it holds), or give its Hub id instead."
        )


def read_auto_config(spec: str, expected: str) -> Any:
    """The transformers config of a model folder or Hub id, or a one-line error naming what to pass."""
    from transformers import AutoConfig

    from ..encoding.provenance import is_hub_id

    if not Path(spec).expanduser().is_dir() and not is_hub_id(spec):
        raise CheckpointError(
            f"{spec} is neither a folder on this machine nor a Hub repo id; pass {expected}."
        )
    return AutoConfig.from_pretrained(spec)


def load_head(spec: str, revision: str | None = None) -> Any:
    """A saved ClassificationHead, or the final linear layer of a transformers classifier."""
    from ..models.classifier_head import head_from_classifier
    from ..models.configs import ClassificationHeadConfig
    from ..models.head import ClassificationHead

    config = read_auto_config(spec, "a ClassificationHead folder or a transformers classifier")
    if isinstance(config, ClassificationHeadConfig):
        return ClassificationHead.from_pretrained(spec, revision=revision)
    return head_from_classifier(spec, revision=revision)
