"""The ``"stitched-classification"`` pipeline: raw inputs -> source encoder -> bridge -> head -> labels.

Registered with transformers when ``hf_latent_bridge`` is imported::

    clf = pipeline("stitched-classification", model="user/minilm-to-mpnet-topics")  # or a local folder
    clf("Which team won the cup?")               # [{"label": "sports", "score": 0.87}]
    clf(["...", "..."], top_k=3, batch_size=32)  # one list of top_k dicts per input
    for result in clf(KeyDataset(dataset, "text")):  # datasets and generators stream
        ...

``source_encoder=`` attaches an :class:`~hf_latent_bridge.Encoder` instead of loading the one recorded in
the model; ``strict=False`` accepts it under another name. The base class runs the four hooks; inputs are
checked once, by the source encoder, before it embeds them. Nothing per call is kept on ``self``, so one
pipeline may serve several threads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from types import GeneratorType
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from transformers import Pipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator

from ..core.options import check
from ..encoding.base import Encoder
from ..errors import BridgeInputError
from .stitched import StitchedModel

TASK = "stitched-classification"


class StitchedClassificationPipeline(Pipeline):
    """Classify texts or images with a :class:`~hf_latent_bridge.StitchedModel`.

    Call arguments: ``top_k`` (labels per input, default 1; ``None`` for all), ``batch_size`` (inputs per
    source-encoder call, default 32) and ``num_workers`` (data-loader workers).
    """

    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_processor = False

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
                f"the {TASK} pipeline needs a StitchedModel (a folder or repo written by StitchedModel.save_pretrained), "
                f"got {type(model).__name__}."
            )
        if source_encoder is not None:
            model.attach_source_encoder(source_encoder, strict=strict)
        kwargs["batch_size"] = check(
            "batch_size", 32 if kwargs.get("batch_size") is None else kwargs["batch_size"]
        )
        super().__init__(model, *args, **kwargs)
        self.encoder = model.source_encoder.to(
            device=self.device
        )  # a missing encoder fails here, not on first call

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Classify one input (a text, an image or an image path), a list of inputs, or a stream (a
        generator, an iterator or a torch ``Dataset`` such as ``KeyDataset(dataset, "text")``, consumed
        lazily). Returns one list of ``{"label", "score"}`` dicts per input."""
        if isinstance(inputs, (list, tuple, TorchDataset)) and len(inputs) == 0:
            raise BridgeInputError(f"the {TASK} pipeline got an empty batch; pass at least one input.")
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        elif isinstance(inputs, Iterator) and not isinstance(inputs, GeneratorType):
            inputs = (item for item in inputs)  # the base class streams generators
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, top_k: Any = "default", **kwargs: Any) -> tuple[dict, dict, dict]:
        kwargs.pop("local_files_only", None)  # forwarded by transformers.pipeline(); nothing to load here
        if kwargs:
            raise BridgeInputError(
                f"unknown argument(s) {sorted(kwargs)} for the {TASK} pipeline; use top_k, batch_size or num_workers."
            )
        return {}, {}, {} if top_k == "default" else {"top_k": check("top_k", top_k)}

    def preprocess(self, input_: Any) -> dict[str, list[Any]]:
        return {"inputs": [input_]}

    def _forward(
        self, model_inputs: dict[str, list[Any]], batch_size: int | None = None
    ) -> dict[str, torch.Tensor]:
        items = model_inputs["inputs"]
        embeddings = self.encoder.embed(items, batch_size=batch_size or len(items), show_progress=False)
        return {"logits": self.model.logits_from_embeddings(embeddings)}

    def postprocess(
        self, model_outputs: dict[str, torch.Tensor], top_k: int | None = 1
    ) -> list[dict[str, Any]]:
        probabilities = torch.softmax(model_outputs["logits"][0].float(), dim=-1)
        scores, indices = probabilities.topk(
            len(probabilities) if top_k is None else min(top_k, len(probabilities))
        )
        return [
            {"label": self.model.config.id2label[int(i)], "score": float(s)}
            for s, i in zip(scores.tolist(), indices.tolist(), strict=True)
        ]

    def get_iterator(
        self,
        inputs: Any,
        num_workers: int,
        batch_size: int,
        preprocess_params: dict,
        forward_params: dict,
        postprocess_params: dict,
    ) -> Any:
        """The base class's loader chain, collating raw inputs into lists (there is no tokenizer to pad with).

        A list goes to the source encoder in one call, which sorts it by length before cutting batches of
        ``batch_size`` (on ChatterBot 1.2x the real tokens padded instead of 3.1x in input order); a stream
        is read ``batch_size`` inputs at a time.
        """
        batch_size = check("batch_size", batch_size)
        if isinstance(inputs, Sized):
            dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
        else:
            dataset, num_workers = (
                PipelineIterator(inputs, self.preprocess, preprocess_params),
                min(num_workers, 1),
            )
        chunk = max(len(inputs), 1) if isinstance(inputs, list) else batch_size
        loader = DataLoader(dataset, batch_size=chunk, num_workers=num_workers, collate_fn=_concatenate)
        batches = PipelineIterator(
            loader, self.forward, {**forward_params, "batch_size": batch_size}, loader_batch_size=chunk
        )
        results = PipelineIterator(batches, self.postprocess, postprocess_params)
        return (result for result in results)  # an iterator: next() works without iter() first


def _concatenate(batches: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    return {"inputs": [item for batch in batches for item in batch["inputs"]]}


def register_pipeline() -> None:
    """Register the task with transformers (idempotent); runs when ``hf_latent_bridge`` is imported."""
    from transformers.pipelines import PIPELINE_REGISTRY

    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is not StitchedClassificationPipeline:
        PIPELINE_REGISTRY.register_pipeline(
            TASK, pipeline_class=StitchedClassificationPipeline, pt_model=StitchedModel, type="multimodal"
        )
