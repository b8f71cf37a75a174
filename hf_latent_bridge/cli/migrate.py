"""``hf-latent-bridge migrate``: move from an OLD sentence-transformers model to a NEW one without
re-embedding the corpus.

Both models embed a calibration sample (texts, or given as vectors); the compatibility estimate is
printed (and gated by ``--min-retention``) before a bridge is fitted on the whole sample. Then, by
``--translate``:

* ``queries`` (default): a bridged SentenceTransformer, NEW followed by the bridge NEW -> OLD, whose
  vectors search the OLD index as it is;
* ``index``: the bridge OLD -> NEW translates ``--index`` into ``--output-index``, and the saved model
  routes queries to NEW and documents through OLD and the bridge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from . import options as opt
from .app import app

Side = Annotated[str, typer.Option(help="What to translate: 'queries' (NEW -> OLD) or 'index' (OLD -> NEW).")]
Vectors = Annotated[
    Path | None, typer.Option(help="Calibration vectors (.npy), instead of --calibration texts.")
]


@app.command()
def migrate(
    old: Annotated[str, typer.Argument(help="The model the index was built with: Hub id or folder.")],
    new: Annotated[str, typer.Argument(help="The model to move to: Hub id or folder.")],
    calibration: Annotated[
        str | None, typer.Option(help="Calibration texts: a JSONL/CSV/Parquet/txt file or a Hub data set.")
    ] = None,
    column: opt.Column = "text",
    num_calibration: Annotated[int, typer.Option(min=2, help="Calibration texts drawn (seeded).")] = 1000,
    old_vectors: Vectors = None,
    new_vectors: Vectors = None,
    translate: Side = "queries",
    method: opt.Method = "auto",
    min_retention: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Refuse to write or push a bridge predicted to keep less than this."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for the bridged model.")
    ] = None,
    index: Annotated[Path | None, typer.Option(help="OLD index to translate (.npy or faiss).")] = None,
    output_index: Annotated[Path | None, typer.Option(help="Translated index (.npy or .faiss).")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Rows translated at a time.")] = 16384,
    old_id: Annotated[str | None, typer.Option(help="Hub id of the model a local OLD folder holds.")] = None,
    new_id: Annotated[str | None, typer.Option(help="Hub id of the model a local NEW folder holds.")] = None,
    seed: opt.Seed = 0,
    batch_size: opt.BatchSize = 32,
    overwrite: opt.Overwrite = False,
    push_to_hub: opt.PushToHub = None,
    private: opt.Private = False,
) -> None:
    """Fit a bridge between OLD and NEW on calibration texts, estimate it, then write the bridged model
    (--output, --push-to-hub) and/or the translated index (--index, --output-index)."""
    from ..errors import BridgeInputError
    from ..files import check_file_target, check_folder_target

    if translate not in ("queries", "index"):
        raise BridgeInputError(f"--translate must be 'queries' or 'index', got {translate!r}.")
    if (index is None) != (output_index is None) or (index is not None and translate != "index"):
        raise BridgeInputError("--index and --output-index go together, with --translate index.")
    if output is None and push_to_hub is None and output_index is None:
        raise BridgeInputError("nothing to write: pass --output, --push-to-hub or --index/--output-index.")
    if (calibration is None) == (old_vectors is None or new_vectors is None):
        raise BridgeInputError(
            "give calibration texts (--calibration) or both --old-vectors and --new-vectors."
        )
    if push_to_hub:
        for role, spec, hub_id in (("old", old, old_id), ("new", new, new_id)):
            opt._require_hub_id(role, spec, hub_id)
    if output is not None:  # refuse before any compute
        check_folder_target(output, overwrite)
    if output_index is not None:
        check_file_target(output_index, overwrite)

    models = _load_models(old, new, output is not None or push_to_hub is not None or calibration is not None)
    old_x, new_x = _calibration(
        models, calibration, column, num_calibration, old_vectors, new_vectors, seed, batch_size
    )
    source, target = (new_x, old_x) if translate == "queries" else (old_x, new_x)
    names = {"old": old_id or old, "new": new_id or new}
    roles = ("new", "old") if translate == "queries" else ("old", "new")
    bridge, estimate = _fit(source, target, method, seed, [names[r] for r in roles], min_retention)
    metrics = {"dataset": calibration or "calibration vectors", **_card_metrics(estimate)}
    if output_index is not None:
        from ..retrieval import translate_vectors

        translate_vectors(
            bridge, index, output_index, chunk_size=chunk_size, overwrite=overwrite, show_progress=True
        )
        typer.echo(f"translated {index} into {output_index}")
    if output is not None or push_to_hub:
        from ..retrieval import bridged_sentence_transformer, push_bridged, save_bridged

        if translate == "queries":
            model = bridged_sentence_transformer(models["new"], bridge)
        else:
            model = bridged_sentence_transformer(models["old"], bridge, query_encoder=models["new"])
        if output is not None:
            save_bridged(model, bridge, output, metrics=metrics, overwrite=overwrite)
            typer.echo(f"saved the bridged model ({bridge.config.method_selected or method}) to {output}")
        if push_to_hub:
            commit = push_bridged(model, bridge, push_to_hub, metrics=metrics, private=private)
            typer.echo(f"pushed to {getattr(commit, 'commit_url', None) or push_to_hub}")


def _load_models(old: str, new: str, needed: bool) -> dict[str, Any]:
    if not needed:
        return {}
    from sentence_transformers import SentenceTransformer

    return {"old": SentenceTransformer(old), "new": SentenceTransformer(new)}


def _calibration(
    models: dict[str, Any],
    data: str | None,
    column: str,
    count: int,
    old_vectors: Path | None,
    new_vectors: Path | None,
    seed: int,
    batch_size: int,
) -> tuple[Any, Any]:
    """(old, new) calibration embeddings: given as vectors, or of ``count`` seeded texts of ``data``."""
    import numpy as np
    import torch

    if data is None:
        return np.load(old_vectors, allow_pickle=False), np.load(new_vectors, allow_pickle=False)
    from ..encoding.tables import column_values, load_table, require_columns

    table = load_table(data)
    require_columns(table, column)
    rows = torch.randperm(len(table), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    texts = column_values(table.select(rows.tolist()), column)
    return tuple(
        models[side].encode_document(texts, batch_size=batch_size, convert_to_numpy=True)
        for side in ("old", "new")
    )


def _fit(source: Any, target: Any, method: str, seed: int, names: list[str], min_retention: float | None):
    from ..encoding.reference import EncoderRef
    from ..retrieval import estimate_compatibility

    estimate = estimate_compatibility(
        source,
        target,
        method=method,
        seed=seed,
        source_encoder=EncoderRef(names[0], modality="text"),
        target_encoder=EncoderRef(names[1], modality="text"),
    )
    typer.echo(estimate.summary())
    estimate.check(min_retention)
    return estimate.bridge, estimate


def _card_metrics(estimate: Any) -> dict[str, float]:
    k = estimate.k
    return {
        f"neighbour retention@{k} (held-out, predicted)": estimate.retention,
        "self-retrieval@1 (held-out)": estimate.self_retrieval,
        "mean cosine (held-out)": estimate.cosine,
    }
