"""The ``"stitched-classification"`` pipeline: raw inputs -> source encoder -> bridge -> head -> labels.

Registered with transformers when ``hf_latent_bridge`` is imported::

    import hf_latent_bridge
    from transformers import pipeline

    clf = pipeline("stitched-classification", model="user/minilm-to-mpnet-topics")  # or a local folder
    clf("Which team won the cup?")              # [{"label": "sports", "score": 0.87}]
    clf(["...", "..."], top_k=3, batch_size=32)  # one list of top_k dicts per input
    for result in clf(KeyDataset(dataset, "text")):  # datasets and generators stream lazily
        ...

``source_encoder=`` attaches an :class:`~hf_latent_bridge.Encoder` instead of loading the one
recorded in the model (offline or custom encoders); ``strict=False`` accepts it under another name.
Image models take PIL images, arrays and image paths.

The base class's ``__call__`` runs everything through the pipeline hooks: :meth:`preprocess` checks one
raw input, the data loader of :meth:`get_iterator` gathers them (``batch_size`` at a time from a stream, a
list whole), :meth:`_forward` embeds each gathered batch with one source-encoder call (which sorts by length
and pads every ``batch_size`` inputs) and applies bridge and head, and :meth:`postprocess` turns one row of
logits into labels. Nothing per call is kept on ``self``, so one pipeline may serve several threads.
"""

from __future__ import annotations

import os
import types
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from transformers import Pipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator

from ..core.options import check_non_negative_int, check_positive_int
from ..encoding.base import Encoder
from ..encoding.inputs import _is_image
from ..errors import BridgeInputError, LatentBridgeError
from .stitched import StitchedModel

TASK = "stitched-classification"

DEFAULT_BATCH_SIZE = 32

_NOUNS = {"text": "text", "image": "images"}


class StitchedClassificationPipeline(Pipeline):
    """Classify texts or images with a :class:`~hf_latent_bridge.StitchedModel`.

    Call arguments: ``top_k`` (labels per input, default 1; ``None`` for all), ``batch_size`` (inputs per
    source-encoder call, default 32) and ``num_workers`` (data-loader workers, as in transformers).
    A single input returns a list of ``{"label", "score"}`` dicts; a list returns one such list per input;
    a generator, an iterator or a torch ``Dataset`` (e.g. ``KeyDataset(dataset, "text")``) returns an
    iterator that yields one such list per input as it goes.
    """

    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_processor = False
    _load_video_processor = False

    def __init__(
        self,
        model: StitchedModel,
        *args: Any,
        source_encoder: Encoder | None = None,
        strict: bool = True,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model, StitchedModel):
            raise BridgeInputError(
                f"the {TASK} pipeline needs a StitchedModel (a folder or repo written by "
                f"StitchedModel.save_pretrained), got {type(model).__name__}."
            )
        if kwargs.get("batch_size") is None:
            kwargs["batch_size"] = DEFAULT_BATCH_SIZE
        _check_loader_options(kwargs)
        if source_encoder is not None:
            model.attach_source_encoder(source_encoder, strict=strict)
        super().__init__(model, *args, **kwargs)
        # loads the recorded encoder now (if none is attached), so its failures show at construction
        self.encoder = model.source_encoder
        self.encoder.to(device=self.device)

    # ------------------------------------------------------------------ calling
    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Classify one input, a list, or a stream of inputs.

        Args:
            inputs: a text or an image (PIL image, ``(h, w[, c])`` array, image path) for a single result;
                a list, a tuple or a stacked image array ``(n, h, w[, c])`` for a list of results (checked
                whole before any compute); a generator, an iterator or a torch ``Dataset`` such as
                ``KeyDataset(dataset, "text")`` for an iterator of results, consumed lazily.
            top_k: labels per input, most probable first (default 1; ``None`` for all).
            batch_size: inputs per source-encoder call (default 32, or the value given to ``pipeline``).
        """
        if args:
            raise BridgeInputError(
                f"pass the inputs as one argument (a single input, a list or a stream), not {len(args) + 1}."
            )
        _check_loader_options(kwargs)
        return super().__call__(self._as_pipeline_inputs(inputs), **kwargs)

    def _as_pipeline_inputs(self, inputs: Any) -> Any:
        """Shape ``inputs`` the way the base ``__call__`` dispatches: one input, a list, or a stream."""
        if isinstance(inputs, Mapping):
            raise BridgeInputError(_mapping_message(inputs, None))
        if type(inputs).__module__.partition(".")[0] == "datasets" and hasattr(inputs, "column_names"):
            raise BridgeInputError(
                f"the {TASK} pipeline takes the inputs themselves, not a whole {type(inputs).__name__}; pass "
                "one column, e.g. KeyDataset(dataset, 'text') (transformers.pipelines.pt_utils) to stream it."
            )
        if isinstance(inputs, (types.GeneratorType, TorchDataset)):
            if isinstance(inputs, Sized) and len(inputs) == 0:
                raise BridgeInputError(f"the {TASK} pipeline got an empty data set; pass at least one input.")
            return inputs  # streamed: each input is checked by preprocess as it is read
        if self._is_single(inputs):
            return inputs  # checked by preprocess
        if isinstance(inputs, Iterator):
            return (item for item in inputs)  # a generator, so that the base class streams it
        if isinstance(inputs, (Iterable, np.ndarray, torch.Tensor)):
            items = list(inputs)  # a stacked image array becomes one array per image (views, no copies)
            if not items:
                raise BridgeInputError(f"the {TASK} pipeline got an empty batch; pass at least one input.")
            for position, item in enumerate(items):  # the whole batch, before any compute
                self._check_one(item, position)
            return items
        return inputs  # not an input of any kind: preprocess refuses it with a clear error

    def _is_single(self, inputs: Any) -> bool:
        if isinstance(inputs, (np.ndarray, torch.Tensor)):
            if self.encoder.modality == "text" or inputs.ndim not in (3, 4):
                return True  # one (h, w) image, or an array that preprocess refuses
            return inputs.ndim == 3 and inputs.shape[-1] in (1, 3, 4)  # one (h, w, c) image, else a stack
        return isinstance(inputs, (str, bytes, os.PathLike)) or _is_image(inputs)

    # ------------------------------------------------------------------ hooks
    def _sanitize_parameters(
        self, top_k: int | str | None = "default", **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        kwargs.pop("local_files_only", None)  # forwarded by transformers.pipeline(); nothing to load here
        if kwargs:
            raise BridgeInputError(
                f"unknown argument(s) {sorted(kwargs)} for the {TASK} pipeline; use top_k, batch_size or "
                "num_workers."
            )
        postprocess: dict[str, Any] = {}
        if isinstance(top_k, str) and top_k == "default":
            pass
        elif top_k is None:
            postprocess["top_k"] = None
        else:
            try:
                postprocess["top_k"] = check_positive_int("top_k", top_k)
            except BridgeInputError:
                raise BridgeInputError(
                    f"top_k must be a positive integer or None (all labels), got {top_k!r}."
                ) from None
        return {}, {}, postprocess

    def preprocess(self, input_: Any) -> dict[str, list[Any]]:
        """Check one raw input against the source encoder's modality; return it as a batch of one."""
        self._check_one(input_, None)
        return {"inputs": [input_]}

    def get_iterator(
        self,
        inputs: Any,
        num_workers: int,
        batch_size: int,
        preprocess_params: dict[str, Any],
        forward_params: dict[str, Any],
        postprocess_params: dict[str, Any],
    ) -> Iterator[list[dict[str, Any]]]:
        """The base class's loader chain, collating raw inputs into lists instead of padding tensors.

        transformers pads tokenizer or image-processor tensors when it collates a batch; here the source
        encoder prepares each batch itself, so a batch is simply the list of its checked inputs. A stream
        is read ``batch_size`` inputs at a time. A list, which the base class returns whole, goes to the
        encoder in one call that sorts all of it by length before cutting batches of ``batch_size``, as
        ``Encoder.embed`` does (on ChatterBot, 1.2x the real tokens padded instead of 3.1x in input order).
        """
        if isinstance(inputs, Sized):
            dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        else:
            num_workers = min(num_workers, 1)  # several workers would each read the whole stream
            dataset = PipelineIterator(inputs, self.preprocess, preprocess_params)
        chunk = max(len(inputs), 1) if isinstance(inputs, list) else batch_size
        loader = DataLoader(dataset, batch_size=chunk, num_workers=num_workers, collate_fn=_concatenate)
        forward_params = {**forward_params, "batch_size": batch_size}
        batches = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=chunk)
        results = PipelineIterator(batches, self.postprocess, postprocess_params)
        return (result for result in results)  # an iterator: next() works, a second loop does not restart it

    def _forward(
        self, model_inputs: dict[str, list[Any]], batch_size: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Embed the inputs with the source encoder (``batch_size`` per model call), then bridge and head."""
        items = model_inputs["inputs"]
        embeddings = self.encoder.embed(items, batch_size=batch_size or len(items), show_progress=False)
        return {"logits": self.model.logits_from_embeddings(embeddings)}

    def postprocess(
        self, model_outputs: dict[str, torch.Tensor], top_k: int | None = 1
    ) -> list[dict[str, Any]]:
        """One row of logits -> the ``top_k`` most probable labels with their scores."""
        probs = torch.softmax(model_outputs["logits"][0].float(), dim=-1)
        k = probs.numel() if top_k is None else min(top_k, probs.numel())
        scores, indices = probs.topk(k)
        id2label = self.model.config.id2label
        return [
            {"label": id2label[int(i)], "score": float(s)}
            for s, i in zip(scores.tolist(), indices.tolist(), strict=True)
        ]

    # ------------------------------------------------------------------ checks
    def _check_one(self, item: Any, position: int | None) -> None:
        """Raise the package's error if ``item`` is not one input of the source encoder's modality."""
        if isinstance(item, Mapping):
            raise BridgeInputError(_mapping_message(item, position))
        try:
            self.encoder.check_inputs([item])
        except LatentBridgeError as error:  # reworded: the encoder saw a batch of one, not this position
            modality = self.encoder.modality
            wanted = "strings" if modality == "text" else "PIL images, (h, w[, c]) arrays or image file paths"
            where = "got" if position is None else f"input {position} is"
            raise type(error)(
                f"the source encoder {self.encoder.ref.name_or_path!r} embeds {_NOUNS[modality]} but {where} "
                f"{_describe(item, modality)}; pass {wanted}, or use a stitched model whose source encoder takes "
                "that kind of input."
            ) from None


def _check_loader_options(kwargs: dict[str, Any]) -> None:
    """Check ``batch_size`` and ``num_workers`` in place (numpy and torch integers become ints; None is left
    alone)."""
    for name, check in (("batch_size", check_positive_int), ("num_workers", check_non_negative_int)):
        if kwargs.get(name) is not None:
            kwargs[name] = check(name, kwargs[name])


def _concatenate(batches: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    """Collate the batches of one from :meth:`preprocess` into one batch."""
    return {"inputs": [item for batch in batches for item in batch["inputs"]]}


def _describe(item: Any, modality: str) -> str:
    if item is None:
        return "None"
    if modality == "image" and isinstance(item, (str, os.PathLike)):
        return f"a string that is not an image file ({str(item)[:60]!r})"
    if isinstance(item, (np.ndarray, torch.Tensor)):
        return f"an array of shape {tuple(item.shape)}"
    if _is_image(item):
        return "an image"
    return f"a {type(item).__name__}"


def _mapping_message(item: Mapping, position: int | None) -> str:
    where = "got" if position is None else f"input {position} is"
    keys = ", ".join(repr(k) for k in list(item)[:5])
    return (
        f"the {TASK} pipeline {where} a dict (keys {keys}); pass the text or image itself, e.g. row['text'], "
        "or stream a column with KeyDataset(dataset, 'text')."
    )


def register_pipeline() -> None:
    """Register the task with transformers (idempotent); called when ``hf_latent_bridge`` is imported."""
    from transformers.pipelines import PIPELINE_REGISTRY

    current = PIPELINE_REGISTRY.supported_tasks.get(TASK)
    if current is not None and current.get("impl") is StitchedClassificationPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK,
        pipeline_class=StitchedClassificationPipeline,
        pt_model=StitchedModel,
        type="multimodal",
    )
