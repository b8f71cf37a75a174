"""Publishing the rows of an anchor set as a Hub data set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.anchor_set import AnchorSet
from ..errors import BridgeInputError

if TYPE_CHECKING:
    import datasets
    from huggingface_hub import CommitInfo


def anchor_rows(dataset: datasets.Dataset, anchor_set: AnchorSet) -> datasets.Dataset:
    """The anchor rows of ``dataset`` in anchor order, with ``anchor_index`` and ``row_index`` columns."""
    if len(anchor_set.indices) and max(anchor_set.indices) >= len(dataset):
        raise BridgeInputError(
            f"anchor_set has row index {max(anchor_set.indices)} but the data set has {len(dataset)} rows; "
            "pass the data set (and split) the anchor set was drawn from."
        )
    rows = dataset.select(list(anchor_set.indices))
    rows = rows.add_column("row_index", list(anchor_set.indices))
    return rows.add_column("anchor_index", list(range(len(anchor_set.indices))))


def push_anchor_rows(
    dataset: datasets.Dataset,
    anchor_set: AnchorSet,
    repo_id: str,
    *,
    token: bool | str | None = None,
    private: bool | None = None,
) -> CommitInfo:
    """Publish the anchor rows as a Hub data set (one split named after ``anchor_set.split``).

    The commit message carries the anchor-set fingerprint, so the published rows can be traced back.
    """
    rows = anchor_rows(dataset, anchor_set)
    return rows.push_to_hub(
        repo_id,
        split=anchor_set.split or "train",
        token=token,
        private=private,
        commit_message=f"Anchor rows of {anchor_set.dataset} (anchor-set fingerprint {anchor_set.fingerprint})",
    )
