"""Shared behaviour of models whose whole state is buffers (bridges and anchor spaces)."""

from __future__ import annotations

import torch
from transformers import initialization as init


class BufferStateMixin:
    """PreTrainedModel derives ``device`` and ``dtype`` from parameters; these models have only buffers."""

    @property
    def device(self) -> torch.device:
        return next(self.buffers()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(b.dtype for b in self.buffers() if b.is_floating_point())

    def _init_weights(self, module: torch.nn.Module) -> None:
        # Loading refuses checkpoints that miss any buffer, so these zeros never leak out.
        if module is self:
            for buffer in self.buffers():
                init.zeros_(buffer)
