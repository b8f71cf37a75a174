"""The one contract of every artifact (bridge, anchor space, head, stitched model): save, push, load.

:class:`ArtifactMixin` goes in front of ``PreTrainedModel``. A model class says what its card shows
(``card_info``) and what its loaded tensors must satisfy (``_check_loaded``); in return:

- ``save_pretrained`` stages config, safetensors and card beside the folder and renames it into place
  (:func:`hf_latent_bridge.files.staged_folder`): the user's other files stay, their README is never
  replaced, and a file of theirs the save would replace is refused unless ``overwrite=True``;
- ``push_to_hub`` uploads the same files as one commit, keeping a README written on the Hub;
- ``from_pretrained`` is transformers' own, with safetensors only and every missing, unexpected or
  mis-shaped tensor an error, then one check of the loaded values.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import CommitInfo, HfApi, ModelCard, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError
from safetensors import SafetensorError
from transformers import PreTrainedModel, modeling_utils
from transformers import initialization as init

from ..encoding.provenance import is_hub_id
from ..errors import BridgeInputError, CheckpointError
from ..files import staged_folder
from .cards import CARD_MARKER, CardInfo, render_model_card
from .configs import ArtifactConfig

logger = logging.getLogger(__name__)

CARD_NAME = "README.md"
#: What a previous save wrote, besides its README: replaced by the next save to the same folder.
REMOTE_CODE_STEM = "modeling_latent_bridge"
REMOTE_CODE_FILE = f"{REMOTE_CODE_STEM}.py"
SAVED_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", REMOTE_CODE_FILE)
#: Larger than any config.json a save writes (an anchor set of a million rows takes about 8 MB).
MAX_CONFIG_BYTES = 64 << 20
#: Files a push replaces wholesale, so a repo never mixes the weights (or code) of two pushes.
REPLACED_ON_PUSH = ("*.safetensors", "*.safetensors.index.json", "*.py")


class ArtifactMixin:
    """Atomic ``save_pretrained`` with a model card, one-commit ``push_to_hub``, strict ``from_pretrained``."""

    #: The standalone module shipped by ``remote_code=True`` saves (only the bridge has one).
    remote_code_module: Any = None

    def card_info(self) -> CardInfo:
        raise NotImplementedError(f"{type(self).__name__} must define card_info().")

    def model_card(self, repo_id: str | None = None, remote_code: bool = False) -> ModelCard:
        """The model card (``repo_id``: the repo or folder its code examples load)."""
        return render_model_card(self.card_info(), repo_id=repo_id, remote_code=remote_code)

    def _check_loaded(self, where: str) -> None:
        """Refuse loaded tensors the model cannot compute with; subclasses add their invariants."""
        for name, tensor in self.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise CheckpointError(
                    f"{where}: tensor {name!r} holds NaN or Inf, so every output would be garbage. The file was "
                    "damaged or saved from a broken model: download it again (force_download=True) or refit it."
                )

    @classmethod
    def get_init_context(cls, *args: Any, **kwargs: Any) -> list[Any]:
        # transformers builds models under a process-global torch.set_default_dtype; ours create every
        # tensor in the config's dtype, so other threads never see the default change.
        contexts = super().get_init_context(*args, **kwargs)  # type: ignore[misc]
        global_dtype = modeling_utils.local_torch_dtype.__wrapped__
        return [c for c in contexts if getattr(c, "func", None) is not global_dtype]

    # ------------------------------------------------------------------ saving
    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        overwrite: bool = False,
        overwrite_model_card: bool = False,
        remote_code: bool = False,
        **kwargs: Any,
    ) -> None:
        """Save ``config.json``, ``model.safetensors`` and the model card (README.md) to a folder, atomically.

        The previous save in the folder is replaced; the user's own files stay (a README without the
        generated-card marker is kept unless ``overwrite_model_card``). ``overwrite=True`` allows replacing
        a file of the user's that has a name this save writes. ``remote_code=True`` also writes the
        standalone modeling code and an ``auto_map`` (loadable with ``trust_remote_code=True`` without
        this package). Other keyword arguments go to ``PreTrainedModel.save_pretrained``.
        """
        if kwargs.pop("push_to_hub", False):
            raise BridgeInputError(
                "save to a folder, then call push_to_hub(repo_id): one commit, card included."
            )
        folder = Path(save_directory).expanduser()
        owned = saved_files(folder)
        users_readme = (folder / CARD_NAME).exists() and CARD_NAME not in owned and not overwrite_model_card
        card = None if users_readme else self.model_card(folder.name, remote_code=remote_code)
        with staged_folder(
            folder, overwrite=overwrite, owned=owned | {CARD_NAME} if card else owned
        ) as staging:
            self._write(staging, card, remote_code, **kwargs)

    def _write(
        self, folder: str | os.PathLike, card: ModelCard | None, remote_code: bool, **kwargs: Any
    ) -> None:
        with _auto_map(self, remote_code, folder):
            super().save_pretrained(folder, **kwargs)  # type: ignore[misc]
        if card is not None:
            card.save(os.path.join(folder, CARD_NAME))

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        tags: list[str] | None = None,
        overwrite_model_card: bool = False,
        remote_code: bool = False,
        parent_commit: str | None = None,
    ) -> CommitInfo:
        """Push config, safetensors and model card to ``repo_id`` as one commit.

        A README.md on the Hub that this package did not generate is kept unless ``overwrite_model_card``.
        ``revision`` is a branch (created from ``main`` if missing); ``parent_commit`` makes the commit fail
        if the branch moved past it. Returns the ``CommitInfo`` (its ``.oid`` pins ``revision=`` on load).
        """
        self._check_shareable()
        api = HfApi()
        repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        if revision is not None and not create_pr:
            api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
        card = None
        if overwrite_model_card or CARD_MARKER in (_hub_card(repo_id, revision, token) or CARD_MARKER):
            card = self.model_card(repo_id, remote_code=remote_code)
            card.data.tags = list(dict.fromkeys([*card.data.tags, *(tags or ())]))
            card.validate()  # the Hub's own check, before anything is uploaded
        else:
            logger.info(
                "%s has a README.md of its own: kept (overwrite_model_card=True replaces it).", repo_id
            )
        with tempfile.TemporaryDirectory(prefix="hlb-push-") as folder:
            self._write(folder, card, remote_code)
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                commit_message=commit_message or f"Upload {type(self).__name__}",
                token=token,
                revision=revision,
                create_pr=create_pr,
                parent_commit=parent_commit,
                delete_patterns=list(REPLACED_ON_PUSH),
            )

    def _check_shareable(self) -> None:
        """Refuse to publish a model that records an encoder by a path of this machine."""
        info = self.card_info()
        for role, ref in (("source", info.source), ("target", info.target)):
            if ref is not None and not is_hub_id(ref.name_or_path):
                raise BridgeInputError(
                    f"this {type(self).__name__} records its {role} encoder by the local path "
                    f"{ref.name_or_path!r}, which nobody who pulls the repo can load. Fit it again naming the Hub "
                    f"id of the model the folder holds ({role}_id='namespace/name', --{role}-id), then push."
                )

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any
    ) -> Any:
        """Load from a folder or a Hub repo (``revision=``, ``subfolder=``, ``HF_HUB_OFFLINE=1`` as in
        transformers). Only safetensors are read and no code from the repo runs; a repo of another model
        type, an invalid config, missing, unexpected or mis-shaped tensors and non-finite values are refused
        with a :class:`~hf_latent_bridge.errors.CheckpointError`."""
        where = os.fspath(pretrained_model_name_or_path)
        local_config = Path(where, kwargs.get("subfolder") or "", "config.json")
        if local_config.is_file() and local_config.stat().st_size > MAX_CONFIG_BYTES:
            raise CheckpointError(
                f"{local_config} is {local_config.stat().st_size} bytes: not a config a save wrote."
            )
        wants_info = kwargs.pop("output_loading_info", False)
        kwargs.pop("trust_remote_code", None)  # this package's classes run, never code from the repo
        try:
            model, info = super().from_pretrained(  # type: ignore[misc]
                where, *args, output_loading_info=True, use_safetensors=True, **kwargs
            )
        except (SafetensorError, ValueError, TypeError, KeyError, AttributeError, RuntimeError) as error:
            # an invalid config.json (our rules or transformers'), tensors of other shapes, a corrupt file
            raise CheckpointError(
                f"{where} cannot be loaded as a {cls.__name__}: {error} The files are corrupt, were edited, or hold "
                "another kind of model: download them again (force_download=True) or save the model again."
            ) from None
        problems = "; ".join(f"{k.replace('_', ' ')}: {', '.join(map(str, v))}" for k, v in info.items() if v)
        if problems:
            raise CheckpointError(
                f"{where} is not a complete {cls.__name__} checkpoint ({problems}); its config.json and weights "
                "come from different saves. Save the model again, or download it again (force_download=True)."
            )
        model._check_loaded(where)
        return (model, info) if wants_info else model


class BufferModel(PreTrainedModel):
    """A model whose whole state is buffers: ``device`` and ``dtype`` come from them."""

    @property
    def device(self) -> torch.device:
        return next(self.buffers()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(b.dtype for b in self.buffers() if b.is_floating_point())

    def _init_weights(self, module: torch.nn.Module) -> None:
        # Loading refuses checkpoints that miss any buffer, so these zeros never reach a user.
        if module is self:
            for buffer in self.buffers():
                init.zeros_(buffer)


def saved_files(folder: Path) -> set[str]:
    """The entries of ``folder`` a previous save of this package wrote (a new save replaces them)."""
    if not folder.is_dir():
        return set()
    names = set(os.listdir(folder))
    owned = set()
    config = _our_config(folder / "config.json") if "config.json" in names else None
    if config is not None:
        owned = {
            n for n in names if n in SAVED_FILES or (n.startswith("model-") and n.endswith(".safetensors"))
        }
        auto_map = config.get("auto_map") if isinstance(config.get("auto_map"), dict) else {}
        if not str(auto_map.get("AutoModel", "")).startswith(REMOTE_CODE_STEM):
            owned.discard(REMOTE_CODE_FILE)  # the user's own file, not code a save shipped
    readme = folder / CARD_NAME
    if readme.is_file() and CARD_MARKER in readme.read_text(encoding="utf-8", errors="replace")[:4096]:
        owned.add(CARD_NAME)
    return owned


def _our_config(path: Path) -> dict[str, Any] | None:
    """The config a save of this package wrote at ``path``, or ``None``."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ours = {c.model_type for c in ArtifactConfig.__subclasses__()}
    return config if isinstance(config, dict) and config.get("model_type") in ours else None


@contextlib.contextmanager
def _auto_map(model: Any, enabled: bool, folder: str | os.PathLike) -> Iterator[None]:
    """For one save: ship the standalone modeling code and name its classes in ``auto_map``."""
    if not enabled:
        yield
        return
    module = model.remote_code_module
    if module is None:
        raise BridgeInputError(
            f"{type(model).__name__} has no standalone code: save it without remote_code=True."
        )
    stem = module.__name__.rpartition(".")[2]
    model.config.auto_map = {"AutoConfig": f"{stem}.LatentBridgeConfig", "AutoModel": f"{stem}.LatentBridge"}
    try:
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(module.__file__, Path(folder) / f"{stem}.py")
        yield
    finally:
        del model.config.auto_map


def _hub_card(repo_id: str, revision: str | None, token: bool | str | None) -> str | None:
    try:
        return Path(hf_hub_download(repo_id, CARD_NAME, revision=revision, token=token)).read_text(
            encoding="utf-8"
        )
    except EntryNotFoundError:
        return None
