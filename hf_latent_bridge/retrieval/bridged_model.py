"""A bridge as sentence-transformers modules: a source encoder followed by the bridge is one
``SentenceTransformer`` whose ``encode``, ``encode_query``, ``encode_document`` and ``similarity`` work in
the target encoder's space.

The bridge's folded map (``y = x @ W + b``, renormalised to a norm and shifted for IRP) is written with
sentence-transformers' own modules, ``Dense`` and ``Normalize``, so the saved folder is an ordinary one
(``modules.json``, each module's config and ``model.safetensors``) that plain ``SentenceTransformer(repo)``
loads with no custom class, no pickle and no remote code. The whole bridge (anchors, provenance, the
fitting record) is saved beside the modules in ``latent_bridge/`` for this package's tools. The other
way round, :func:`bridged_sentence_transformer` with ``query_encoder=`` routes queries to the new encoder
and documents through the old encoder and the bridge (sentence-transformers' ``Router``), matching an
index translated with the same bridge.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import CommitInfo, HfApi

from ..errors import BridgeInputError, IncompatibleEncoderError
from ..files import staged_folder
from ..models.bridge import LatentBridge
from ..models.cards import render_model_card, short_name

#: Where the full bridge is saved inside a bridged SentenceTransformer's folder.
BRIDGE_FOLDER = "latent_bridge"

#: What a bridged model's card is for.
TAGS = ["sentence-transformers", "sentence-similarity", "feature-extraction", "latent-bridge"]


def bridge_modules(bridge: LatentBridge) -> list[torch.nn.Module]:
    """The bridge as sentence-transformers modules: ``Dense`` (the map), then, for a renormalised map,
    ``Normalize`` and a ``Dense`` holding the norm and the shift. Equal to ``bridge.translate`` up to
    float32 rounding."""
    from sentence_transformers.base.modules import Dense, Normalize

    weight, bias, norm, shift = _one_map(bridge)
    identity = torch.nn.Identity()
    modules = [Dense(weight.shape[0], weight.shape[1], True, identity, weight.T.float(), bias.float())]
    if norm > 0:
        scale = torch.eye(len(shift), dtype=torch.float32) * norm
        modules += [Normalize(), Dense(len(shift), len(shift), True, identity, scale, shift.float())]
    return modules


def bridged_sentence_transformer(
    source: Any, bridge: LatentBridge, *, query_encoder: Any = None, device: str | None = None
) -> Any:
    """A ``SentenceTransformer`` that embeds into the bridge's target space.

    Args:
        source: the bridge's source encoder, a ``SentenceTransformer`` or its Hub id / folder.
        bridge: a :class:`LatentBridge` from ``source``'s space into the target's.
        query_encoder: ``None``: every input goes through ``source`` and the bridge (new-model queries
            searching an index built by the bridge's target). The target encoder (object, id or folder):
            queries go to it directly and documents through ``source`` and the bridge, for an index that
            was translated with the same bridge (:func:`~hf_latent_bridge.retrieval.translate_vectors`).
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Router

    source_model = _sentence_transformer(source, device)
    _check_encoder(source_model, source, bridge, "source", bridge.config.source_dim)
    documents = [*source_model, *bridge_modules(bridge)]
    prompts = dict(source_model.prompts)
    if query_encoder is None:
        modules = documents
        similarity = source_model.similarity_fn_name
    else:
        query_model = _sentence_transformer(query_encoder, device)
        _check_encoder(query_model, query_encoder, bridge, "target", bridge.config.target_dim)
        modules = [Router.for_query_document(query_modules=[*query_model], document_modules=documents)]
        prompts = {k: v for k, v in prompts.items() if k != "query"} | {
            k: v for k, v in query_model.prompts.items() if k == "query"
        }
        similarity = query_model.similarity_fn_name
    return SentenceTransformer(
        modules=modules, device=device, prompts=prompts, similarity_fn_name=similarity or "cosine"
    )


def save_bridged(
    model: Any,
    bridge: LatentBridge,
    path: str | os.PathLike,
    *,
    metrics: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Save ``model`` (from :func:`bridged_sentence_transformer`) as a sentence-transformers folder, with
    the bridge in ``latent_bridge/`` and a model card showing ``metrics`` (e.g. ``{"dataset": ...,
    "recall@10": ...}``); staged beside ``path`` and renamed into place, so a failure leaves ``path`` as
    it was. An existing non-empty folder is replaced only with ``overwrite``."""
    with staged_folder(path, overwrite=overwrite) as staging:
        _write(model, bridge, staging, metrics, repo_id=Path(path).name)
    return Path(path)


def push_bridged(
    model: Any,
    bridge: LatentBridge,
    repo_id: str,
    *,
    metrics: Mapping[str, Any] | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
) -> CommitInfo:
    """Push what :func:`save_bridged` writes to ``repo_id`` as one commit; returns its ``CommitInfo``."""
    bridge._check_shareable()
    api = HfApi()
    repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
    if revision is not None:
        api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hlb-push-") as folder:
        _write(model, bridge, Path(folder), metrics, repo_id=repo_id)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            token=token,
            revision=revision,
            commit_message=commit_message or "Upload a bridged SentenceTransformer",
        )


def _write(
    model: Any, bridge: LatentBridge, folder: Path, metrics: Mapping[str, Any] | None, repo_id: str | None
) -> None:
    model.save(str(folder), create_model_card=False)
    bridge.save_pretrained(folder / BRIDGE_FOLDER)
    card = model_card(bridge, metrics, routed=_is_routed(model), repo_id=repo_id or folder.name)
    card.save(str(folder / "README.md"))


def model_card(
    bridge: LatentBridge,
    metrics: Mapping[str, Any] | None = None,
    routed: bool = False,
    repo_id: str | None = None,
) -> Any:
    """The card of a bridged SentenceTransformer, in sentence-transformers' conventions: library
    ``sentence-transformers``, both encoders as base models, the measured retrieval figures; its code
    loads ``repo_id`` (a repo, or the folder a local save went to)."""
    config = bridge.config
    source, target = short_name(config.source), short_name(config.target)
    if routed:
        summary = (
            f"Queries are embedded by {target}; documents by {source} followed by a latent bridge into "
            f"{target}'s space, like an index of {source} vectors translated with the same bridge. Search "
            f"a translated index with `encode_query`, add documents with `encode_document`."
        )
    else:
        summary = (
            f"{source} followed by a latent bridge into {target}'s space: its embeddings can be searched "
            f"against an index built with {target}, without re-embedding that index."
        )
    card = replace(  # the bridge's own card (encoders, method, anchors), as a sentence-transformers model
        bridge.card_info(),
        title=f"{source} bridged into {target}'s space",
        summary=summary
        + " The bridge is written with sentence-transformers' own Dense and Normalize modules.",
        usage=(
            "from sentence_transformers import SentenceTransformer\n\n"
            'model = SentenceTransformer("{repo_id}")\n'
            'queries = model.encode_query(["How do I reset my password?"])\n'
            'documents = model.encode_document(["Open Settings, then Security."])\n'
            "print(model.similarity(queries, documents))"
        ),
        metrics=dict(metrics or {}),
        task="retrieval",
        tags=TAGS,
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        install="pip install sentence-transformers",
    )
    return render_model_card(card, repo_id=repo_id)


def _one_map(bridge: LatentBridge) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
    """The bridge's single folded map; linear members of an ensemble sum into one."""
    weight, bias, norm, shift = bridge.weight, bridge.bias, bridge.output_norm, bridge.output_shift
    if len(weight) == 1 or not bool((norm > 0).any()):
        return weight.sum(0), bias.sum(0), 0.0 if len(weight) > 1 else float(norm[0]), shift.sum(0)
    raise BridgeInputError(
        f"this bridge sums {len(weight)} renormalised maps (method {bridge.config.method_selected!r}, "
        f"ensemble {bridge.config.ensemble}), which sentence-transformers modules cannot express; fit it with "
        "blend=False and ensemble=1."
    )


def _sentence_transformer(encoder: Any, device: str | None) -> Any:
    from sentence_transformers import SentenceTransformer

    if isinstance(encoder, SentenceTransformer):
        return encoder
    if isinstance(encoder, (str, os.PathLike)):
        return SentenceTransformer(os.fspath(encoder), device=device)
    raise BridgeInputError(
        f"expected a SentenceTransformer or its Hub id / folder, got {type(encoder).__name__}; for other "
        "encoders, translate their embeddings with bridge.translate."
    )


def _check_encoder(model: Any, given: Any, bridge: LatentBridge, role: str, dim: int) -> None:
    """``model`` must embed in ``dim`` dimensions and, when both are known, carry the recorded name."""
    recorded = getattr(bridge.config, role)
    if model.get_embedding_dimension() != dim:
        raise IncompatibleEncoderError(
            f"the {role} encoder embeds in {model.get_embedding_dimension()} dimensions, but the bridge's {role} "
            f"side has {dim} ({recorded.name_or_path if recorded else 'encoder not recorded'}); pass the encoder "
            "the bridge was fitted on."
        )
    name = os.fspath(given) if isinstance(given, (str, os.PathLike)) else None
    if recorded and name and short_name(recorded).casefold() != Path(name.rstrip("/")).name.casefold():
        raise IncompatibleEncoderError(
            f"the bridge's {role} encoder is {recorded.name_or_path!r}, not {name!r}; pass that encoder, or fit "
            f"a bridge for {name!r}."
        )


def _is_routed(model: Any) -> bool:
    from sentence_transformers.base.modules import Router

    return any(isinstance(module, Router) for module in model)
