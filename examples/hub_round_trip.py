"""Share a bridge: save, reload, and (with a Hub account) push and pull at a pinned revision.

    python examples/hub_round_trip.py                  # local folder round trip only
    HLB_PUSH_REPO=you/my-bridge python examples/hub_round_trip.py   # also push to the Hub (needs HF_TOKEN)

The bridge is fitted on seeded synthetic anchors so the example runs in seconds; with real encoders
you would fit it from their embeddings of the same anchor inputs and record both encoders' ids.
"""

from __future__ import annotations

import os
import tempfile

import torch

from hf_latent_bridge import AnchorSet, EncoderRef, LatentBridge


def main() -> None:
    g = torch.Generator().manual_seed(0)
    source, target = torch.randn(200, 64, generator=g), torch.randn(200, 48, generator=g)
    bridge = LatentBridge.fit(
        source,
        target,
        source_encoder=EncoderRef("sentence-transformers/all-mpnet-base-v2", pooling="mean", modality="text"),
        target_encoder=EncoderRef("sentence-transformers/all-MiniLM-L6-v2", pooling="mean", modality="text"),
        anchor_set=AnchorSet("you/anchor-sentences", tuple(range(200)), revision="main", split="train"),
    )

    with tempfile.TemporaryDirectory() as folder:
        bridge.save_pretrained(folder)  # config.json + model.safetensors + the model card (README.md)
        reloaded = LatentBridge.from_pretrained(folder)
        same = torch.equal(reloaded.translate(source[:5]), bridge.translate(source[:5]))
        print(f"local round trip: {sorted(os.listdir(folder))}, identical translations: {same}")

    repo_id = os.environ.get("HLB_PUSH_REPO")
    if not repo_id:
        print("set HLB_PUSH_REPO=namespace/name (and HF_TOKEN) to push to the Hub as well")
        return
    commit = bridge.push_to_hub(repo_id, private=True)  # one commit: config, weights, model card
    pulled = LatentBridge.from_pretrained(repo_id, revision=commit.oid)  # pinned to that commit
    print(f"pushed {commit.commit_url}; pulled identical: {torch.equal(pulled.weight, bridge.weight)}")


if __name__ == "__main__":
    main()
