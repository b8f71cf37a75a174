"""From two encoder ids to a stitched classifier anyone can load, in one call.

MiniLM users get a topic classifier whose head was trained on mpnet embeddings: the call embeds the data
once per encoder, fits the bridge on anchors, trains the head, scores the result on held-out rows and puts
the scores on the model card. Offline here: both encoders and the data come from pip packages, and the
local folders are recorded under the Hub ids of the models they hold.

    python examples/stitch_in_one_call.py [--out minilm-to-mpnet-topics] [--anchors 1000]
"""

from __future__ import annotations

import argparse

from transformers import pipeline

from hf_latent_bridge import load_encoder, stitch
from hf_latent_bridge.demo import chatterbot_topics, minilm_path, mpnet_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="minilm-to-mpnet-topics", help="folder for the stitched model")
    parser.add_argument("--anchors", type=int, default=1000, help="number of parallel anchors")
    args = parser.parse_args()

    model = stitch(
        minilm_path(),  # online: "sentence-transformers/all-MiniLM-L6-v2"
        mpnet_path(),  # online: "sentence-transformers/all-mpnet-base-v2"
        chatterbot_topics(),  # or a Hub data set id, or a JSONL / CSV / Parquet file
        text_column="text",
        label_column="label",
        num_anchors=args.anchors,
        source_id="sentence-transformers/all-MiniLM-L6-v2",
        target_id="sentence-transformers/all-mpnet-base-v2",
        show_progress=True,
    )
    print({name: round(value, 3) for name, value in model.config.metrics.items() if isinstance(value, float)})
    model.save_pretrained(args.out)  # writes the model card too; push_to_hub("you/repo") shares it

    classifier = pipeline(
        "stitched-classification", model=args.out, source_encoder=load_encoder(minilm_path())
    )
    print(classifier("Do you like to play basketball?", top_k=3))


if __name__ == "__main__":
    main()
