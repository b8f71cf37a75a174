"""``hf-latent-bridge eval-retrieval``: retrieval cells of an encoder swap (old index, new encoder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import BridgeInputError
from . import options as opt
from .app import app, command_line

#: Suffixes of a vectors file (tensors ``queries`` and ``documents``) given instead of an encoder.
VECTOR_SUFFIXES = (".safetensors", ".npz")
DEFAULT_ANCHORS = 2000


@app.command("eval-retrieval")
def eval_retrieval(
    old: Annotated[
        str,
        typer.Argument(
            help="Old encoder (built the index): [alias=]hub_id_or_folder[@revision], or a .safetensors/.npz "
            "file of its 'queries' and 'documents' vectors."
        ),
    ],
    new: Annotated[str, typer.Argument(help="New encoder, in the same forms.")],
    qrels: Annotated[
        Path,
        typer.Option(
            help="Relevant documents: JSON (a list, entry i the document rows of query i, or {query row: rows or "
            "{row: grade}}) or TREC qrels lines 'query 0 document grade', ids being row numbers."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for retrieval.json and retrieval.md.")
    ],
    queries: Annotated[
        Path | None, typer.Option(help="Query texts (one per line, or .jsonl), for an encoder argument.")
    ] = None,
    documents: Annotated[
        Path | None, typer.Option(help="Document texts (one per line, or .jsonl), for an encoder argument.")
    ] = None,
    column: Annotated[str, typer.Option(help="Text field of .jsonl inputs.")] = "text",
    sides: Annotated[
        str,
        typer.Option(
            help="Comma-separated directions: queries (new queries through a bridge new -> old on the old index), "
            "documents (the old index through a bridge old -> new, searched by new queries)."
        ),
    ] = "queries,documents",
    methods: Annotated[
        str, typer.Option(help="Comma-separated methods of the bridges fitted on anchor documents.")
    ] = "auto,procrustes",
    bridge: Annotated[
        Path | None,
        typer.Option(
            help="Score this saved bridge instead of fitting (new -> old for queries, old -> new for documents; "
            "with one of --sides)."
        ),
    ] = None,
    num_anchors: Annotated[
        int | None,
        typer.Option(
            "--num-anchors",
            min=2,
            help=f"Anchor documents, a seeded sample (default: up to {DEFAULT_ANCHORS}).",
        ),
    ] = None,
    cascade: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated candidate counts N of a two-stage search with the first bridge: it recalls N "
            "documents, the new encoder's document vectors re-score them."
        ),
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Cut-off k of every metric.")] = 10,
    seed: opt.Seed = 0,
    batch_size: opt.BatchSize = 32,
    cache_dir: opt.CacheDir = None,
    overwrite: opt.Overwrite = False,
) -> None:
    """Score retrieval through a bridge against keeping the old encoder and re-indexing with the new one.

    Every row: recall@k, MRR@k and nDCG@k on the judged queries; for bridges the label-free cells too,
    self-retrieval and neighbour overlap@k with the target encoder's own search.
    """
    from ..core.options import check
    from ..evaluation.retrieval import SIDES, as_qrels, markdown_table, metric_names, score_direction
    from ..files import staged_folder

    side_list = _names(sides, "--sides", SIDES)
    method_list = [check("method", m, "--methods") for m in _names(methods, "--methods")]
    depths = [_count(n, "--cascade", top_k) for n in _names(cascade or "", "--cascade", None, empty=True)]
    if bridge is not None and len(side_list) != 1:
        raise BridgeInputError(
            "--bridge maps one way: pass --sides queries (new -> old) or --sides documents."
        )
    judged = _read_qrels(qrels)
    with staged_folder(output, overwrite=overwrite) as staging:
        names, vectors = {}, {}
        for role, spec in (("old", old), ("new", new)):
            names[role], vectors[role] = _vectors(
                spec, role, queries, documents, column, batch_size, cache_dir
            )
        n_queries, n_documents = len(vectors["old"]["queries"]), len(vectors["old"]["documents"])
        relevant = as_qrels(judged, n_queries, n_documents)
        anchors = _anchor_rows(n_documents, num_anchors, seed) if bridge is None else None
        rows = []
        for side in side_list:
            bridges = _bridges(side, vectors, anchors, method_list, bridge)
            rankings = _cascades(side, vectors, next(iter(bridges.values())), depths, top_k)
            rows += score_direction(
                side,
                vectors["old"]["queries"],
                vectors["old"]["documents"],
                vectors["new"]["queries"],
                vectors["new"]["documents"],
                relevant,
                bridges,
                k=top_k,
                rankings=rankings,
                anchor_documents=anchors,
            )
        anchors_text = "a saved bridge" if anchors is None else f"bridges fitted on {len(anchors)} documents"
        markdown = "\n".join(
            [
                f"## Retrieval: {names['old']} index, {names['new']} queries",
                "",
                f"{n_queries} queries ({len(relevant)} with a relevant document), {n_documents} documents; "
                f"{anchors_text}. queries: new queries through a bridge new -> old on the old index; documents: "
                "the old index through a bridge old -> new, searched by new queries. Self-retrieval: translated "
                "vectors against the target encoder's (documents: the non-anchor ones); overlap: with the target "
                "encoder's own top k (cascades: with re-index's).",
                "",
                markdown_table(rows, ["side", "row", "bridge", *metric_names(top_k)]),
            ]
        )
        report = {
            "command": command_line(),
            "old": names["old"],
            "new": names["new"],
            "queries": n_queries,
            "documents": n_documents,
            "judged_queries": len(relevant),
            "anchors": None if anchors is None else len(anchors),
            "k": top_k,
            "rows": rows,
        }
        (staging / "retrieval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (staging / "retrieval.md").write_text(
            markdown + f"\n\nCommand: `{command_line()}`\n", encoding="utf-8"
        )
    typer.echo(markdown)
    typer.echo(f"wrote {output}/retrieval.json, retrieval.md")


def _vectors(
    spec: str,
    role: str,
    queries: Path | None,
    documents: Path | None,
    column: str,
    batch_size: int,
    cache_dir: Path | None,
) -> tuple[str, dict[str, Any]]:
    """(name, {"queries": ..., "documents": ...}) of one encoder: read from a vectors file, or embedded."""
    if Path(spec).suffix.lower() in VECTOR_SUFFIXES:
        return Path(spec).stem, _read_vectors(Path(spec), role)
    from ..encoding import embed_inputs, load_encoder
    from ..encoding.tables import read_inputs
    from .evaluate import _encoder_spec

    if queries is None or documents is None:
        raise BridgeInputError(
            f"{role} encoder {spec} needs texts to embed: pass --queries and --documents (or give a "
            f"{'/'.join(VECTOR_SUFFIXES)} file of its vectors)."
        )
    alias, name, revision = _encoder_spec(spec)
    encoder = load_encoder(name, revision=revision)
    embedded = {
        part: embed_inputs(encoder, read_inputs(path, column), batch_size=batch_size, cache_dir=cache_dir)
        for part, path in (("queries", queries), ("documents", documents))
    }
    return alias, embedded


def _read_vectors(path: Path, role: str) -> dict[str, Any]:
    if not path.is_file():
        raise BridgeInputError(f"{role} vectors file {path} does not exist; pass an existing file.")
    try:
        if path.suffix.lower() == ".npz":
            import numpy as np

            with np.load(path) as archive:
                tensors = {key: archive[key] for key in archive.files}
        else:
            from safetensors.torch import load_file

            tensors = load_file(path)
    except Exception as error:  # a damaged or foreign file: say which, in one line
        raise BridgeInputError(f"cannot read {role} vectors file {path}: {error}") from None
    missing = [key for key in ("queries", "documents") if key not in tensors]
    if missing:
        raise BridgeInputError(
            f"{path} has no {' or '.join(missing)} tensor (it has {', '.join(sorted(tensors)) or 'none'}); save "
            "the encoder's query and document vectors under the names 'queries' and 'documents'."
        )
    return {key: tensors[key] for key in ("queries", "documents")}


def _read_qrels(path: Path) -> Any:
    """Relevance judgements as read: a JSON list or object, or a dict of TREC qrels lines."""
    if not path.is_file():
        raise BridgeInputError(f"qrels file {path} does not exist; pass a JSON or TREC qrels file.")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise BridgeInputError(f"cannot read qrels {path} as JSON: {error}") from None
    import ir_measures

    judged: dict[str, dict[str, int]] = {}
    try:
        for qrel in ir_measures.read_trec_qrels(str(path)):
            judged.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    except (UnicodeDecodeError, ValueError, IndexError) as error:
        raise BridgeInputError(
            f"cannot read qrels {path} as TREC lines 'query 0 document grade' ({error}); or give a .json file."
        ) from None
    return judged


def _anchor_rows(n_documents: int, num_anchors: int | None, seed: int) -> Any:
    import torch

    count = min(DEFAULT_ANCHORS, n_documents) if num_anchors is None else num_anchors
    if count > n_documents:
        raise BridgeInputError(
            f"--num-anchors {count} is more than the {n_documents} documents; use at most that."
        )
    order = torch.randperm(n_documents, generator=torch.Generator().manual_seed(seed))
    return order[:count].sort().values.numpy()


def _bridges(
    side: str, vectors: dict[str, Any], anchors: Any, methods: list[str], saved: Path | None
) -> dict[str, Any]:
    """name -> bridge of one direction: the saved one, or one fitted per method on the anchor documents."""
    from ..models.bridge import LatentBridge

    if saved is not None:
        return {"bridge": LatentBridge.from_pretrained(str(saved))}
    source, target = ("new", "old") if side == "queries" else ("old", "new")
    x, y = (vectors[role]["documents"][anchors] for role in (source, target))
    return {m: LatentBridge.fit(x, y, method=m) for m in methods}


def _cascades(side: str, vectors: dict[str, Any], bridge: Any, depths: list[int], k: int) -> dict[str, Any]:
    """name -> ids of the two-stage search at each depth: queries, new queries through the bridge on the old
    index; documents, new queries on the index translated old -> new; re-scored by new document vectors."""
    from ..retrieval.search import two_stage_search

    new = vectors["new"]
    index, through = (
        (vectors["old"]["documents"], bridge)
        if side == "queries"
        else (bridge.translate(vectors["old"]["documents"]), None)
    )
    return {
        f"cascade N={n}": two_stage_search(
            new["queries"], index, through, k=k, candidates=n, document_vectors=new["documents"]
        )[1]
        for n in depths
    }


def _names(text: str, option: str, allowed: tuple[str, ...] | None = None, empty: bool = False) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names and not empty:
        raise BridgeInputError(f"{option} is empty; give comma-separated names.")
    for name in names if allowed else ():
        if name not in allowed:
            raise BridgeInputError(f"unknown {option} {name!r}; choose among {', '.join(allowed)}.")
    return list(dict.fromkeys(names))


def _count(text: str, option: str, k: int) -> int:
    if not text.isdigit() or int(text) < k:
        raise BridgeInputError(f"{option} {text!r} must be a whole number of candidates >= --top-k ({k}).")
    return int(text)
