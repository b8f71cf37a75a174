"""LatentBridge.fit with the automatic ridge against a set ridge, side by side, and the peak memory of a fit.

For every shape (k anchors, d_source -> d_target) with k in {1000, 5000, 20000} and (d_source, d_target)
in {(384, 768), (1024, 1024)}, both fits run on the same anchors, alternating, and the medians are
compared (goal: auto <= 2x fixed). The anchors are synthetic but shaped like embeddings: an anisotropic
source (power-law spectrum) and a target that is a noisy linear image of it (the data change what the
automatic choice picks, not its cost: every candidate is scored whatever wins). Then, for the largest
k, each fit runs alone in a fresh process and the peak resident memory of that process is read from the
kernel (``VmHWM`` in ``/proc/self/status``, which starts afresh at ``exec``, unlike ``ru_maxrss``, which a
child inherits from the process that forked it; goal: under 2 GB for the whole process). Last, the
default ``method="auto"`` (every whitening pair, ridge, direct method and blend scored on held-out
anchors, then the chosen map) against one IRP fit with a set ridge and whitening at k = 5,000,
384 -> 768, alternating on the same anchors (goal: auto <= 3x that IRP fit), and at k = 1,000.

    python benchmarks/fit_speed.py [--repeats 3] [--memory-only | --selection-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from _common import RESULTS, alternating_medians, write_results

from hf_latent_bridge import LatentBridge

KS = (1000, 5000, 20000)
DIMS = ((384, 768), (1024, 1024))
FIXED_RIDGE = 1.0
MEMORY_K = 20000
SELECTION_SHAPES = ((5000, 384, 768), (1000, 384, 768))  # the goal's shape, then a small k


def anchors(k: int, d_x: int, d_y: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(k, d_x) and (k, d_y) float32 anchors: anisotropic source, noisy linear target."""
    g = torch.Generator().manual_seed(seed)
    spectrum = torch.arange(1, d_x + 1, dtype=torch.float32) ** -0.7
    source = torch.randn(k, d_x, generator=g) * spectrum + 0.1
    mixing = torch.randn(d_x, d_y, generator=g) / d_x**0.5
    target = source @ mixing + 0.05 * torch.randn(k, d_y, generator=g) - 0.2
    return source, target


def resident_mb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (current) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)  # kB
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def peak_memory_child(k: int, d_x: int, d_y: int, ridge: str) -> None:
    """Run one fit in this (fresh) process and print its memory figures as JSON."""
    source, target = anchors(k, d_x, d_y)
    before = resident_mb("VmHWM")
    start = time.perf_counter()
    LatentBridge.fit(
        source, target, method="irp", whitening=0.3, ridge="auto" if ridge == "auto" else float(ridge)
    )
    seconds = time.perf_counter() - start
    print(json.dumps({"peak_mb": resident_mb("VmHWM"), "before_fit_mb": before, "seconds": seconds}))


def peak_memory(k: int, d_x: int, d_y: int, ridge: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--memory-child", f"{k},{d_x},{d_y},{ridge}"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def selection_speed(shape: tuple[int, int, int], repeats: int) -> dict[str, object]:
    """The whole ``method="auto"`` fit against one IRP fit with a set ridge and whitening."""
    source, target = anchors(*shape)
    chosen = {}

    def auto() -> None:
        chosen["label"] = LatentBridge.fit(source, target).config.selection["chosen"]

    medians = alternating_medians(
        {
            "auto": auto,
            "irp": lambda: LatentBridge.fit(source, target, "irp", whitening=0.3, ridge=FIXED_RIDGE),
        },
        repeats,
        warmup=1,
    )
    return {
        "shape": list(shape),
        "auto_s": round(medians["auto"], 3),
        "irp_s": round(medians["irp"], 3),
        "ratio": round(medians["auto"] / medians["irp"], 3),
        "chosen": chosen["label"],
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-only", action="store_true", help="re-measure memory, keep the timed rows")
    parser.add_argument("--selection-only", action="store_true", help="re-measure auto, keep the rest")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        k, d_x, d_y, ridge = args.memory_child.split(",")
        peak_memory_child(int(k), int(d_x), int(d_y), ridge)
        return

    kept = (
        json.loads((RESULTS / "fit_speed.json").read_text())
        if args.memory_only or args.selection_only
        else {}
    )
    rows = kept.get("rows", [])
    for d_x, d_y in DIMS if not kept else ():
        for k in KS:
            source, target = anchors(k, d_x, d_y)
            selected = {}

            def fit(ridge: float | str, source=source, target=target, selected=selected) -> None:
                bridge = LatentBridge.fit(source, target, method="irp", whitening=0.3, ridge=ridge)
                selected[ridge] = bridge.config.ridge_selected

            repeats = args.repeats if k < 20000 else max(1, args.repeats - 1)
            medians = alternating_medians(
                {"auto": lambda: fit("auto"), "fixed": lambda: fit(FIXED_RIDGE)},
                repeats,
                warmup=1 if k < 20000 else 0,
            )
            row = {
                "k": k,
                "d_source": d_x,
                "d_target": d_y,
                "auto_s": round(medians["auto"], 3),
                "fixed_s": round(medians["fixed"], 3),
                "ratio": round(medians["auto"] / medians["fixed"], 3),
                "ridge_selected": selected["auto"],
                "repeats": repeats,
            }
            rows.append(row)
            print(row, flush=True)

    if args.selection_only:
        memory = kept["memory"]
    else:
        memory = {ridge: peak_memory(MEMORY_K, 1024, 1024, ridge) for ridge in ("auto", str(FIXED_RIDGE))}
        print(memory, flush=True)
    selection = [selection_speed(shape, args.repeats) for shape in SELECTION_SHAPES]
    print(selection, flush=True)
    worst = max(r["ratio"] for r in rows)
    lines = [
        "## Fit speed: automatic ridge against a set one (benchmarks/fit_speed.py)",
        "",
        f'`LatentBridge.fit` (IRP, default whitening) with `ridge="auto"` and with `ridge={FIXED_RIDGE}`, '
        "alternating on the same anchors; medians. Goal: auto <= 2x fixed at every shape. "
        f"Worst ratio: **{worst}**.",
        "",
        "| k | d_source -> d_target | auto s | fixed s | auto / fixed | ridge chosen |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['k']} | {r['d_source']} -> {r['d_target']} | {r['auto_s']} | {r['fixed_s']} "
            f"| **{r['ratio']}** | {r['ridge_selected']:.3g} |"
        )
    lines += [
        "",
        f"Peak resident memory of a whole process that builds k = {MEMORY_K} anchors (1024 -> 1024, float32) "
        'and fits once (`VmHWM`; goal: under 2 GB). "Before the fit": imports and anchors alone.',
        "",
        "| ridge | peak MB (process) | MB before the fit | fit s |",
        "|---|---|---|---|",
    ]
    for ridge, m in memory.items():
        lines.append(f"| {ridge} | {m['peak_mb']} | {m['before_fit_mb']} | {m['seconds']:.2f} |")
    lines += [
        "",
        f'The default `method="auto"` against one IRP fit with `ridge={FIXED_RIDGE}, whitening=0.3`, alternating on '
        f"the same anchors; medians of {args.repeats}. Goal: auto <= 3x at k = 5000, 384 -> 768.",
        "",
        "| k | d_source -> d_target | auto s | IRP (set ridge) s | auto / IRP | auto chose |",
        "|---|---|---|---|---|---|",
    ]
    for r in selection:
        k, d_x, d_y = r["shape"]
        lines.append(
            f"| {k} | {d_x} -> {d_y} | {r['auto_s']} | {r['irp_s']} | **{r['ratio']}** | {r['chosen']} |"
        )
    payload = {"rows": rows, "memory": memory, "fixed_ridge": FIXED_RIDGE, "selection": selection}
    write_results("fit_speed", payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
