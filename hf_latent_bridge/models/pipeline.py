"""The ``"stitched-classification"`` pipeline: raw inputs -> source encoder -> bridge -> head -> labels.

Registered with transformers when ``hf_latent_bridge`` is imported::

    import hf_latent_bridge
    from transformers import pipeline

    clf = pipeline("stitched-classification", model="user/minilm-to-mpnet-topics")  # or a local folder
    clf("Which team won the cup?")              # [{"label": "sports", "score": 0.87}]
    clf(["...", "..."], top_k=3, batch_size=32)  # one list of top_k dicts per input

``source_encoder=`` attaches an :class:`~hf_latent_bridge.encoders.Encoder` instead of loading the one
recorded in the model (offline or custom encoders); ``strict=False`` accepts it under another name.
Image models take PIL images, arrays and image paths.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from transformers import Pipeline

from ..encoding.base import Encoder
from ..encoding.inputs import _is_image
from ..errors import BridgeInputError
from .stitched import StitchedModel

TASK = "stitched-classification"


DEFAULT_BATCH_SIZE = 32


class StitchedClassificationPipeline(Pipeline):
    """Classify texts or images with a :class:`~hf_latent_bridge.StitchedModel`.

    Call arguments: ``top_k`` (labels per input, default 1; ``None`` for all) and ``batch_size``.
    A single input returns a list of ``{"label", "score"}`` dicts; a list returns one such list per input.
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
        super().__init__(model, *args, **kwargs)
        if source_encoder is not None:
            model.attach_source_encoder(source_encoder, strict=strict)
        self.encoder = model.source_encoder
        self.encoder.to(device=self.device)

    def _sanitize_parameters(
        self, top_k: int | str | None = "default", show_progress: bool | None = None, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        kwargs.pop("local_files_only", None)  # forwarded by transformers.pipeline(); nothing to load here
        if kwargs:
            raise BridgeInputError(
                f"unknown argument(s) {sorted(kwargs)} for the {TASK} pipeline; use top_k or batch_size."
            )
        postprocess: dict[str, Any] = {}
        if top_k != "default":
            if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
                raise BridgeInputError(
                    f"top_k must be a positive integer or None (all labels), got {top_k!r}."
                )
            postprocess["top_k"] = top_k
        forward = {} if show_progress is None else {"show_progress": show_progress}
        return {}, forward, postprocess

    def __call__(self, inputs: Any, *args: Any, batch_size: int | None = None, **kwargs: Any) -> Any:
        """Classify one input or a list; all checks (modality, empty batch, options) run before compute."""
        if args:
            raise BridgeInputError(
                f"pass the inputs as one argument (a single input or a list), not {len(args) + 1}."
            )
        kwargs.pop("num_workers", None)
        preprocess, forward, postprocess = self._sanitize_parameters(**kwargs)
        forward = {**self._forward_params, **forward}
        postprocess = {**self._postprocess_params, **postprocess}
        batch_size = batch_size or self._batch_size or DEFAULT_BATCH_SIZE
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise BridgeInputError(f"batch_size must be a positive integer, got {batch_size!r}.")
        single = self._is_single(inputs)
        if single and not isinstance(inputs, str):
            inputs = [inputs]
        model_inputs = self.preprocess(inputs, **preprocess)
        with self.device_placement(), torch.inference_mode():
            outputs = self._forward(model_inputs, batch_size=batch_size, **forward)
        results = self.postprocess(outputs, **postprocess)
        return results[0] if single else results

    def _is_single(self, inputs: Any) -> bool:
        if self.encoder.modality == "text":
            return isinstance(inputs, str)
        if isinstance(inputs, (np.ndarray, torch.Tensor)):  # (h, w) or (h, w, c): one image
            return inputs.ndim == 2 or (inputs.ndim == 3 and inputs.shape[-1] in (1, 3, 4))
        return isinstance(inputs, (str, os.PathLike)) or _is_image(inputs)

    def preprocess(self, inputs: Any, **_: Any) -> dict[str, Any]:
        """Validate the batch for the source encoder's modality (raises before any compute)."""
        return {"inputs": self.encoder.check_inputs(inputs)}

    def _forward(
        self,
        model_inputs: dict[str, Any],
        batch_size: int = DEFAULT_BATCH_SIZE,
        show_progress: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        logits = self.model.classify(
            model_inputs["inputs"], batch_size=batch_size, show_progress=show_progress
        )
        return {"logits": logits}

    def postprocess(
        self, model_outputs: dict[str, torch.Tensor], top_k: int | None = 1
    ) -> list[list[dict[str, Any]]]:
        probs = torch.softmax(model_outputs["logits"].float(), dim=-1)
        k = probs.shape[-1] if top_k is None else min(top_k, probs.shape[-1])
        scores, indices = probs.topk(k, dim=-1)
        id2label = self.model.config.id2label
        return [
            [{"label": id2label[int(i)], "score": float(s)} for s, i in zip(row_s, row_i, strict=True)]
            for row_s, row_i in zip(scores.tolist(), indices.tolist(), strict=True)
        ]


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
