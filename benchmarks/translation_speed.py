"""LatentBridge.translate throughput against a bare matmul of the same shapes.

For every (d_source, d_target, k) in {384, 768, 1024}^2 x {1000, 4000} an IRP bridge is fitted on k
Gaussian anchors (the data do not change the cost of translating) and a batch of n source rows is
translated; the baseline is ``x @ W`` with a (d_source, d_target) float32 matrix. The two are timed in
alternation and the medians compared (goal: translate <= 1.2x the bare matmul). Fit times are measured by
``benchmarks/fit_speed.py``.

    python benchmarks/translation_speed.py [--rows 4096] [--repeats 15]
"""

from __future__ import annotations

import argparse

import torch
from _common import alternating_medians, write_results

from hf_latent_bridge import LatentBridge

DIMS = (384, 768, 1024)
KS = (1000, 4000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096, help="source rows translated per call")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    translate_rows = []
    for d_x in DIMS:
        for d_y in DIMS:
            for k in KS:
                source = torch.randn(k, d_x, generator=g)
                target = torch.randn(k, d_y, generator=g)
                bridge = LatentBridge.fit(source, target, "irp", ridge=0.1)
                x = torch.randn(args.rows, d_x, generator=g)
                w = torch.randn(d_x, d_y, generator=g)
                medians = alternating_medians(
                    {"translate": lambda b=bridge, x=x: b.translate(x), "matmul": lambda x=x, w=w: x @ w},
                    args.repeats,
                )
                row = {
                    "d_source": d_x,
                    "d_target": d_y,
                    "k": k,
                    "rows": args.rows,
                    "translate_ms": round(medians["translate"] * 1e3, 3),
                    "matmul_ms": round(medians["matmul"] * 1e3, 3),
                    "ratio": round(medians["translate"] / medians["matmul"], 3),
                    "translate_rows_per_s": round(args.rows / medians["translate"]),
                }
                translate_rows.append(row)
                print(row, flush=True)
    ratios = sorted(r["ratio"] for r in translate_rows)
    summary = {
        "median_ratio": ratios[len(ratios) // 2],
        "max_ratio": ratios[-1],
        "goal": "translate <= 1.2x bare matmul",
        "configs_meeting_goal": sum(r <= 1.2 for r in ratios),
        "configs": len(ratios),
    }
    lines = [
        "## Translation speed (benchmarks/translation_speed.py)",
        "",
        f"{args.rows} rows per call, float32, medians of {args.repeats} alternating repeats. "
        f"Median ratio translate / bare matmul: **{summary['median_ratio']}** (max {summary['max_ratio']}); "
        f"{summary['configs_meeting_goal']} of {summary['configs']} configurations meet the 1.2x goal.",
        "",
        "| d_source | d_target | k | translate ms | matmul ms | ratio | rows/s |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['d_source']} | {r['d_target']} | {r['k']} | {r['translate_ms']} | {r['matmul_ms']} | {r['ratio']} | {r['translate_rows_per_s']} |"
            for r in translate_rows
        ),
    ]
    write_results(
        "translation_speed",
        {"summary": summary, "translate": translate_rows},
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
