"""What ``import hf_latent_bridge`` costs next to its floor: torch plus transformers' PreTrainedModel and
Pipeline, which registering the models and the pipeline task at import needs.

Each measurement is a fresh interpreter (``python -X importtime`` is not used: it slows imports down);
the variants run in alternation so that drifts in machine load hit all of them alike. Also lists the
top-level packages each variant imports beyond the floor (transformers itself imports accelerate): the
package must not pull in datasets, matplotlib, sentence_transformers or its own demo resources.

    python benchmarks/import_time.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from _common import write_results

VARIANTS = {
    "python": "pass",
    "floor: torch + PreTrainedModel + Pipeline": "import torch\nfrom transformers import PreTrainedModel, Pipeline",
    "import hf_latent_bridge": "import hf_latent_bridge",
    "hf-latent-bridge --help (CLI)": "import hf_latent_bridge.cli",
}
FLOOR = "floor: torch + PreTrainedModel + Pipeline"

TIMER = """
import time, sys, json
start = time.perf_counter()
exec(sys.argv[1])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "modules": sorted(sys.modules)}))
"""


def measure(code: str) -> tuple[float, list[str]]:
    out = subprocess.run([sys.executable, "-c", TIMER, code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"], result["modules"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    modules: dict[str, list[str]] = {}
    for code in VARIANTS.values():  # warm the file cache
        measure(code)
    for _ in range(args.repeats):
        for name, code in VARIANTS.items():
            seconds, loaded = measure(code)
            times[name].append(seconds)
            modules[name] = loaded
    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians[FLOOR]
    floor_packages = {m.split(".")[0] for m in modules[FLOOR]}
    extra = {
        name: sorted({m.split(".")[0] for m in loaded} - floor_packages)
        for name, loaded in modules.items()
        if name not in ("python", FLOOR)
    }
    demo_loaded = {name: "hf_latent_bridge.demo" in loaded for name, loaded in modules.items()}
    rows = [
        f"| {name} | {seconds:.2f} | {seconds / floor:.2f} | {', '.join(extra.get(name, [])) or '-'} |"
        for name, seconds in medians.items()
    ]
    markdown = "\n".join(
        [
            f"Median wall time of {args.repeats} fresh interpreters per variant, in alternation.",
            "",
            "| variant | seconds | / floor | packages imported beyond the floor |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    write_results(
        "import_time",
        {
            "repeats": args.repeats,
            "median_seconds": medians,
            "all_seconds": times,
            "packages_beyond_floor": extra,
            "demo_imported": demo_loaded,
        },
        markdown,
    )
    print(markdown)


if __name__ == "__main__":
    main()
