"""How fast from_pretrained refuses crafted config.json files (sizes that would allocate terabytes).

A bridge (k=400 anchors, 384 -> 256), an anchor space, a head and a stitched model are saved; each
crafted edit of config.json is loaded ``--repeats`` times and the median time to the CheckpointError
is reported next to the time of a normal load of the same artifact. The config's own checks and
transformers' loader (which builds the model on the meta device and compares shapes before loading)
refuse them, so the time does not grow with the sizes the config claims.

    python benchmarks/crafted_configs.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch
from _common import median_time, write_results

from hf_latent_bridge import (
    AnchorSet,
    AnchorSpace,
    CheckpointError,
    ClassificationHead,
    EncoderRef,
    LatentBridge,
    StitchedModel,
)


def artifacts(root: Path) -> dict[str, tuple[type, Path]]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(400, 384, generator=g), torch.randn(400, 256, generator=g)
    anchors = AnchorSet("bench/anchors", tuple(range(400)))
    bridge = LatentBridge.fit(x, y, ridge=0.1, source_encoder=EncoderRef("bench/source"), anchor_set=anchors)
    head = ClassificationHead.fit(y, torch.arange(400) % 4, max_iter=20)
    models = {
        "bridge": bridge,
        "anchor_space": AnchorSpace.from_embeddings(x, anchor_set=anchors, encoder="bench/source"),
        "head": head,
        "stitched": StitchedModel.from_parts(bridge, head),
    }
    for name, model in models.items():
        model.save_pretrained(root / name)
    return {name: (type(model), root / name) for name, model in models.items()}


CRAFTED = {
    "bridge: ensemble 2**31": ("bridge", lambda c: c.update(ensemble=2**31)),
    "bridge: source_dim 10**9": ("bridge", lambda c: c.update(source_dim=10**9)),
    "bridge: 1024 x 2**20 x 2**20 maps (4 PB)": (
        "bridge",
        lambda c: c.update(source_dim=2**20, target_dim=2**20, ensemble=1024),
    ),
    "bridge: 2**24 anchors": ("bridge", lambda c: c.update(num_anchors=2**24)),
    "anchor space: dim 2**20": ("anchor_space", lambda c: c.update(dim=2**20)),
    "head: input_dim 10**6": ("head", lambda c: c.update(input_dim=10**6)),
    "stitched: bridge of 2**20 dims": (
        "stitched",
        lambda c: c["bridge_config"].update(source_dim=2**20, target_dim=2**20),
    ),
    "stitched: head of 10**6 dims": ("stitched", lambda c: c["head_config"].update(input_dim=10**6)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        saved = artifacts(Path(tmp))
        normal = {
            name: median_time(lambda cls=cls, path=path: cls.from_pretrained(path), args.repeats)
            for name, (cls, path) in saved.items()
        }
        for case, (kind, edit) in CRAFTED.items():
            cls, path = saved[kind]
            folder = Path(tmp) / "crafted"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(path, folder)
            config = json.loads((folder / "config.json").read_text())
            edit(config)
            (folder / "config.json").write_text(json.dumps(config))

            def load(cls=cls, folder=folder):
                try:
                    cls.from_pretrained(folder)
                except CheckpointError:
                    return
                raise AssertionError("a crafted config was accepted")

            rows.append(
                {
                    "case": case,
                    "refused_ms": 1000 * median_time(load, args.repeats),
                    "normal_load_ms": 1000 * normal[kind],
                }
            )
    lines = [
        "# Crafted configs: time to refuse",
        "",
        "| crafted config.json | refused in (ms) | normal load of the same kind (ms) |",
        "|---|---|---|",
        *(f"| {r['case']} | {r['refused_ms']:.1f} | {r['normal_load_ms']:.1f} |" for r in rows),
    ]
    _, md_path = write_results("crafted_configs", {"rows": rows}, "\n".join(lines))
    print(md_path.read_text())


if __name__ == "__main__":
    main()
