"""Real data sets that install offline (ordinary pip or Debian packages, no download at run time).

* **ChatterBot topics**: the English YAML files of ``chatterbot-corpus``, see :func:`chatterbot_topics`.
* **Fashion-MNIST**: the Debian package ``dataset-fashion-mnist``, see :func:`fashion_mnist`; captions of
  its classes for cross-modal anchors come from :func:`fashion_mnist_captions`.

Nothing is loaded at import time; optional packages are imported inside the functions and a missing one
raises :class:`ImportError` that says what to install. YAML is read
with ``yaml.safe_load`` and the idx files are parsed directly; nothing is unpickled.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._optional import DEMO_EXTRA_HINT, import_optional

if TYPE_CHECKING:
    import datasets


logger = logging.getLogger(__name__)


FASHION_MNIST_DIR_ENV = "HF_LATENT_BRIDGE_FASHION_MNIST_DIR"


FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


CHATTERBOT_MIN_UTTERANCES = 20
CHATTERBOT_NAME = "chatterbot-corpus==1.3.3 (English topics)"


def _chatterbot_english_dir() -> Path:
    spec = importlib.util.find_spec("chatterbot_corpus")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "hf_latent_bridge.demo needs the optional package 'chatterbot-corpus' (module "
            f"'chatterbot_corpus'), which is not installed. Install it with: {DEMO_EXTRA_HINT}"
        )
    for location in spec.submodule_search_locations:
        english = Path(location) / "data" / "english"
        if english.is_dir() and any(english.glob("*.yml")):
            return english
    raise ImportError(
        "chatterbot-corpus is installed but has no data/english/*.yml files; "
        "reinstall it: pip install --force-reinstall chatterbot-corpus==1.3.3"
    )


def _iter_utterances(conversations: Any) -> Iterable[str]:
    """Yield utterance strings from a ``conversations`` entry, tolerating the corpus' malformed entries."""
    if not isinstance(conversations, list):
        return
    for conversation in conversations:
        # One trivia entry is a bare string (a missing "- " in the YAML); iterating it would yield characters.
        turns = [conversation] if isinstance(conversation, str) else conversation
        if not isinstance(turns, list):
            continue
        for turn in turns:
            if isinstance(turn, (str, int, float)) and not isinstance(turn, bool):
                yield str(turn)


def chatterbot_topics(min_utterances: int = CHATTERBOT_MIN_UTTERANCES) -> datasets.Dataset:
    """Utterances of the English ChatterBot corpus labelled with their topic (the YAML file's name).

    Cleaning, in this order (deterministic; rows follow sorted file name, then file order):

    1. Every string of every ``conversations`` entry is an utterance. A conversation that is a bare
       string (one malformed entry in ``trivia.yml``) counts as one utterance.
    2. Whitespace is collapsed (``" ".join(text.split())``); empty utterances are dropped.
    3. Duplicates are found case-insensitively (``str.casefold``). An utterance that occurs under more
       than one topic ("Hello", "Yes.", "Thank you." ...) is dropped entirely; repeats within one topic
       keep their first occurrence. Every remaining text is therefore unique.
    4. Topics left with fewer than ``min_utterances`` utterances are dropped.

    With chatterbot-corpus 1.3.3 and the default threshold of 20: 4,332 raw utterances (the bare-string
    entry counted once; iterating it naively would give 4,419 strings) -> 1,872 case-insensitively unique
    texts -> 1,864 after dropping 8 texts shared by several topics -> 1,841 texts in 19 topics after
    dropping ``health`` (7) and ``history`` (16). Topic sizes are very unequal (``trivia`` 510,
    ``emotion`` 244, ..., ``tech_support`` 20 -- its 2,100 strings are mostly repeats).

    Args:
        min_utterances: minimum number of unique utterances for a topic to be kept.

    Returns:
        A ``datasets.Dataset`` with columns ``text`` (string) and ``label`` (``ClassLabel`` whose names
        are the kept topic names, sorted).

    Raises:
        ImportError: if ``pyyaml``, ``datasets`` or ``chatterbot-corpus`` is missing.
    """
    yaml = import_optional("yaml", "pyyaml")
    ds_lib = import_optional("datasets", "datasets")
    english = _chatterbot_english_dir()

    first_seen: dict[str, tuple[str, str]] = {}  # casefold key -> (text, topic) of first occurrence
    topics_of: dict[str, set[str]] = {}
    raw = 0
    for path in sorted(english.glob("*.yml")):
        topic = path.stem
        with path.open(encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
        conversations = document.get("conversations") if isinstance(document, dict) else None
        for utterance in _iter_utterances(conversations):
            raw += 1
            text = " ".join(utterance.split())
            if not text:
                continue
            key = text.casefold()
            first_seen.setdefault(key, (text, topic))
            topics_of.setdefault(key, set()).add(topic)

    kept = [(text, topic) for key, (text, topic) in first_seen.items() if len(topics_of[key]) == 1]
    counts: dict[str, int] = {}
    for _, topic in kept:
        counts[topic] = counts.get(topic, 0) + 1
    names = sorted(t for t, c in counts.items() if c >= min_utterances)
    dropped = sorted(set(counts) - set(names))
    index = {name: i for i, name in enumerate(names)}
    rows = [(text, index[topic]) for text, topic in kept if topic in index]
    logger.info(
        "chatterbot topics: %d raw utterances, %d unique, %d ambiguous across topics, %d kept in %d topics "
        "(dropped topics below %d: %s)",
        raw,
        len(first_seen),
        len(first_seen) - len(kept),
        len(rows),
        len(names),
        min_utterances,
        dropped,
    )
    features = ds_lib.Features({"text": ds_lib.Value("string"), "label": ds_lib.ClassLabel(names=names)})
    info = ds_lib.DatasetInfo(
        dataset_name=CHATTERBOT_NAME,
        description="English ChatterBot corpus utterances labelled by topic (hf_latent_bridge.demo.data).",
        features=features,
    )
    return ds_lib.Dataset.from_dict(
        {"text": [t for t, _ in rows], "label": [label for _, label in rows]}, features=features, info=info
    )


def chatterbot_topics_splits(
    test_size: float = 0.3, seed: int = 0, min_utterances: int = CHATTERBOT_MIN_UTTERANCES
) -> datasets.DatasetDict:
    """Stratified train/test split of :func:`chatterbot_topics`.

    Uses ``Dataset.train_test_split(test_size=test_size, stratify_by_column="label", seed=seed)``, so the
    split is deterministic for a given seed and keeps every topic's share in both parts.

    Returns:
        ``DatasetDict`` with ``"train"`` and ``"test"``.
    """
    dataset = chatterbot_topics(min_utterances=min_utterances)
    return dataset.train_test_split(test_size=test_size, stratify_by_column="label", seed=seed)


_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


_APT_HINT = "apt-get install dataset-fashion-mnist"


def fashion_mnist_dir() -> Path:
    """Directory holding the Fashion-MNIST idx files.

    ``$HF_LATENT_BRIDGE_FASHION_MNIST_DIR`` if set, else ``/usr/share/datasets/fashion-mnist`` (the Debian
    package ``dataset-fashion-mnist``). The directory is not checked here.
    """
    return Path(os.environ.get(FASHION_MNIST_DIR_ENV) or FASHION_MNIST_DEFAULT_DIR)


def _idx_file(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}.gz not found in {directory}. Install the data with `{_APT_HINT}` "
        f"or point ${FASHION_MNIST_DIR_ENV} at a folder holding the four *-ubyte.gz files."
    )


def _read_idx(path: Path, expected_ndim: int, limit: int | None) -> np.ndarray:
    """Parse an idx file of unsigned bytes (optionally gzip-compressed), reading only ``limit`` items."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        header = handle.read(4)
        if len(header) != 4 or header[:2] != b"\x00\x00" or header[2] != 0x08 or header[3] != expected_ndim:
            raise ValueError(
                f"{path} is not an idx file of {expected_ndim}-d unsigned bytes (header {header!r})"
            )
        dims = tuple(int(d) for d in np.frombuffer(handle.read(4 * expected_ndim), dtype=">u4"))
        count = dims[0] if limit is None else min(limit, dims[0])
        item = int(np.prod(dims[1:], dtype=np.int64)) if expected_ndim > 1 else 1
        payload = handle.read(count * item)
    if len(payload) != count * item:
        raise ValueError(f"{path} is truncated: expected {count * item} bytes of data, got {len(payload)}")
    return np.frombuffer(payload, dtype=np.uint8).reshape((count, *dims[1:]))


def fashion_mnist_arrays(split: str = "train", limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST as numpy arrays: ``(images uint8 (n, 28, 28), labels int64 (n,))``.

    Files are parsed directly (gzip + ``np.frombuffer``); with ``limit`` only the first ``limit``
    examples are decompressed. Order is the file order (the official order). The image array is
    read-only (it views the decompressed buffer); copy it before writing to it.

    Args:
        split: ``"train"`` (60,000 examples) or ``"test"`` (10,000).
        limit: keep only the first ``limit`` examples.

    Raises:
        ValueError: for an unknown split, a negative limit or a malformed file.
        FileNotFoundError: if the files are missing (install with ``apt-get install dataset-fashion-mnist``).
    """
    if split not in _FASHION_FILES:
        raise ValueError(f"split must be one of {sorted(_FASHION_FILES)}, got {split!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    directory = fashion_mnist_dir()
    images_stem, labels_stem = _FASHION_FILES[split]
    images_path, labels_path = _idx_file(directory, images_stem), _idx_file(directory, labels_stem)
    images = _read_idx(images_path, 3, limit)
    labels = _read_idx(labels_path, 1, limit).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path} holds images of shape {images.shape[1:]}, expected (28, 28)")
    if labels.size and (labels.min() < 0 or labels.max() >= len(FASHION_MNIST_CLASSES)):
        raise ValueError(f"{labels_path} holds labels outside 0..9")
    logger.debug("Read %d Fashion-MNIST %s examples from %s", len(labels), split, directory)
    return images, labels


def fashion_mnist(split: str = "train", limit: int | None = None) -> datasets.Dataset:
    """Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` as a ``datasets.Dataset``.

    Columns: ``image`` with feature ``Array2D(shape=(28, 28), dtype="uint8")`` (raw grey pixels, no PNG
    encode/decode, about 1 s for the full training set) and ``label`` (``ClassLabel`` with
    :data:`FASHION_MNIST_CLASSES`). Unformatted rows give nested lists; for arrays use
    ``ds.with_format("numpy")`` -- note that the ``datasets`` numpy/torch formatters return integer
    columns as ``int64``, which :func:`efficientnet_preprocess` accepts. For plain arrays without the
    Arrow round trip use :func:`fashion_mnist_arrays`.

    Args:
        split: ``"train"`` (60,000) or ``"test"`` (10,000).
        limit: keep only the first ``limit`` examples (file order).
    """
    ds_lib = import_optional("datasets", "datasets")
    images, labels = fashion_mnist_arrays(split, limit)
    features = ds_lib.Features(
        {
            "image": ds_lib.Array2D(shape=(28, 28), dtype="uint8"),
            "label": ds_lib.ClassLabel(names=list(FASHION_MNIST_CLASSES)),
        }
    )
    info = ds_lib.DatasetInfo(
        description="Fashion-MNIST (Xiao et al. 2017), Debian package dataset-fashion-mnist.",
        features=features,
    )
    return ds_lib.Dataset.from_dict(
        {"image": images, "label": labels}, features=features, info=info, split=ds_lib.NamedSplit(split)
    )


_FASHION_NOUNS: tuple[tuple[str, ...], ...] = (
    ("a t-shirt", "a short-sleeved top", "a plain tee"),
    ("a pair of trousers", "a pair of long pants", "a pair of slacks"),
    ("a pullover", "a long-sleeved sweater", "a knitted jumper"),
    ("a dress", "a woman's dress", "a one-piece dress"),
    ("a coat", "a long winter coat", "a buttoned jacket"),
    ("a sandal", "an open-toed summer sandal", "a strappy sandal"),
    ("a shirt", "a button-up shirt", "a collared shirt"),
    ("a sneaker", "a sports shoe", "a low-top trainer"),
    ("a bag", "a handbag", "a tote bag"),
    ("an ankle boot", "a short leather boot", "a heeled ankle boot"),
)


_FASHION_TEMPLATES: tuple[str, ...] = (
    "a photo of {}",
    "a black and white photo of {}",
    "a small grayscale picture of {}",
    "a product photo of {} on a plain background",
)


def fashion_mnist_captions(labels: Iterable[int | str] | np.ndarray, variants: bool = True) -> list[str]:
    """One short English caption per Fashion-MNIST label, for (image, caption) cross-modal anchors.

    Captions combine a noun phrase for the class (3 per class) with a template (4 in all). With
    ``variants=True`` the ``k``-th occurrence of a class in ``labels`` (counting from 0) uses noun
    ``k % 3`` and template ``(k // 3) % 4``, so each class cycles through its 12 phrasings and the same
    input always gives the same captions; the first occurrence of a class gets the canonical caption.
    With ``variants=False`` every caption is the canonical ``"a photo of <first noun>"`` (e.g. ``"a
    photo of a pair of trousers"``), useful as a class prompt.

    Args:
        labels: integer class ids 0..9 (Python or numpy ints) or class names from
            :data:`FASHION_MNIST_CLASSES`.
        variants: vary the wording (default) or always use the canonical caption.

    Raises:
        ValueError: for an unknown label.
    """
    values = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)
    name_to_id = {name: i for i, name in enumerate(FASHION_MNIST_CLASSES)}
    captions = []
    seen = [0] * len(FASHION_MNIST_CLASSES)
    for label in values:
        if isinstance(label, str):
            if label not in name_to_id:
                raise ValueError(
                    f"Unknown Fashion-MNIST class name {label!r}; expected one of {FASHION_MNIST_CLASSES}"
                )
            class_id = name_to_id[label]
        elif isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            class_id = int(label)
            if not 0 <= class_id < len(FASHION_MNIST_CLASSES):
                raise ValueError(f"Fashion-MNIST labels are 0..9, got {class_id}")
        else:
            raise ValueError(f"Labels must be ints 0..9 or class names, got {label!r}")
        nouns = _FASHION_NOUNS[class_id]
        if variants:
            k = seen[class_id]
            seen[class_id] += 1
            noun = nouns[k % len(nouns)]
            template = _FASHION_TEMPLATES[(k // len(nouns)) % len(_FASHION_TEMPLATES)]
        else:
            noun, template = nouns[0], _FASHION_TEMPLATES[0]
        captions.append(template.format(noun))
    return captions
