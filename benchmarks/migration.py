"""Index migration at scale: 1,000,000 x 384 float32 vectors translated into 768 dimensions, file to file.

A Procrustes bridge is fitted on 2,000 random unit anchors (x, and y = normalize(x R + noise)); the
source vectors are seeded random unit rows in a ``.npy`` file. Measured, in one run:

(a) throughput: ``translate_vectors`` from the ``.npy`` file to a ``.npy`` file against a bare in-memory
    ``torch.mm`` of the same shapes (1M x 384 @ 384 x 768), the same matmul into an output allocated and
    touched beforehand (the arithmetic alone: on this VM, first touches of memory are costly and vary
    with the host), the bridge's chunked forward pass in memory (no disk) and ``bridge.translate`` of the
    whole array; alternated, best of ``--repeats``. Each run starts with no write-back pending and writes
    a new file; the call returns once the rows are on disk (``translate_vectors`` flushes before it
    renames), and ``os.sync`` after it is timed apart. Replacing an existing output is timed too.
(b) memory: the peak resident memory (VmHWM) of a child process doing only the migration, for two chunk
    sizes, against the same migration written through numpy memory maps;
(c) processes: the same migration on 1 process (2 threads) and under ``torchrun --nproc_per_node 2``
    (1 thread each): sha256 of both outputs and the wall time of each command.

Files go to ``--folder`` (default /tmp/hlb-migration, about 8 GB at the peak) and are deleted at the end.

    python benchmarks/migration.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import write_results

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.retrieval.migration import translate_vectors

D_SOURCE, D_TARGET, ANCHORS = 384, 768, 2000
CHUNK = 16384  # translate_vectors' default chunk_size
SCRIPT = Path(__file__).resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-sizes", default="65536,16384", help="chunk sizes of the memory runs")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/hlb-migration"))
    parser.add_argument("--child", choices=["translate", "memmap"], help=argparse.SUPPRESS)
    parser.add_argument("--chunk-size", type=int, default=16384, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    torch.set_num_threads(2)
    args.folder.mkdir(parents=True, exist_ok=True)
    try:
        run(args)
    finally:
        shutil.rmtree(args.folder, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    folder, n = args.folder, args.rows
    started, load_at_start = time.perf_counter(), list(os.getloadavg())
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(n, D_SOURCE, generator=g), dim=1)
    np.save(folder / "in.npy", x.numpy())
    anchors_x = torch.nn.functional.normalize(torch.randn(ANCHORS, D_SOURCE, generator=g), dim=1)
    rotation = torch.linalg.qr(torch.randn(D_TARGET, D_TARGET, generator=g))[0][:D_SOURCE]
    noise = 0.05 * torch.randn(ANCHORS, D_TARGET, generator=g)
    anchors_y = torch.nn.functional.normalize(anchors_x @ rotation + noise, dim=1)
    bridge = LatentBridge.fit(anchors_x, anchors_y, method="procrustes")
    bridge.save_pretrained(folder / "bridge")
    os.sync()

    throughput = measure_throughput(bridge, x, folder, args.repeats)
    del x

    # (b) peak memory of a child doing only the migration
    memory = []
    chunk_sizes = [int(c) for c in args.chunk_sizes.split(",")]
    for mode, chunk in [*(("translate", c) for c in chunk_sizes), ("memmap", chunk_sizes[-1])]:
        out = folder / f"out-{mode}-{chunk}.npy"
        report, seconds = launch([sys.executable], args, mode, chunk, out, threads=2)
        memory.append({"mode": mode, "chunk_size": chunk, "command_seconds": seconds, **report[0]})
        print(memory[-1], flush=True)
        if mode == "translate" and chunk == chunk_sizes[-1]:
            one_process = {"sha256": sha256(out), "command_seconds": seconds, **report[0]}
        out.unlink()
        os.sync()

    # (c) two processes
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    out = folder / "out-two-processes.npy"
    report, seconds = launch(torchrun, args, "translate", chunk_sizes[-1], out, threads=1)
    two_processes = {"sha256": sha256(out), "command_seconds": seconds, "ranks": report}
    out.unlink()
    processes = {
        "chunk_size": chunk_sizes[-1],
        "one_process_2_threads": one_process,
        "two_processes_1_thread_each": two_processes,
        "identical": one_process["sha256"] == two_processes["sha256"],
    }
    print(json.dumps(processes, indent=1), flush=True)
    payload = {
        "throughput": throughput,
        "memory": memory,
        "processes": processes,
        "total_seconds": round(time.perf_counter() - started, 1),
        "load_average_when_started": load_at_start,  # machine()'s figure is taken when the results are written
    }
    write_results("migration", payload, markdown(payload))


def measure_throughput(bridge: LatentBridge, x: torch.Tensor, folder: Path, repeats: int) -> dict:
    """(a): the four variants alternated, best of ``repeats``, and the file's rows checked."""
    n, weight = len(x), bridge.weight[0].clone()
    sync_times: list[float] = []

    def to_file() -> None:
        translate_vectors(bridge, folder / "in.npy", folder / "out.npy")

    def replacing() -> None:
        translate_vectors(bridge, folder / "in.npy", folder / "replaced.npy", overwrite=True)

    def chunked_forward(chunk: int = CHUNK) -> None:
        with torch.no_grad():
            for start in range(0, n, chunk):
                bridge(x[start : start + chunk])

    prefaulted = torch.zeros(n, D_TARGET)  # every page touched once, before the timings
    variants = {
        "bare torch.mm, in memory": lambda: torch.mm(x, weight),
        "bare torch.mm into a preallocated output (the arithmetic alone)": lambda: torch.mm(
            x, weight, out=prefaulted
        ),
        "translate_vectors .npy -> .npy": to_file,
        "translate_vectors .npy -> .npy, replacing an existing output": replacing,
        f"chunked bridge forward ({CHUNK} rows), in memory": chunked_forward,
        "bridge.translate, whole array in memory": lambda: bridge.translate(x),
    }
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    translate_vectors(bridge, folder / "in.npy", folder / "replaced.npy")  # the output to replace
    for _ in range(repeats):
        for name, fn in variants.items():
            if fn is to_file:
                (folder / "out.npy").unlink(missing_ok=True)
            os.sync()  # each run starts with no write-back pending
            cpu_start, start = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
            if fn is to_file:
                start = time.perf_counter()
                os.sync()  # the write-back to disk, outside the timed call
                sync_times.append(time.perf_counter() - start)
    best = {k: min(v) for k, v in wall.items()}
    matmul = best["bare torch.mm, in memory"]
    arithmetic = best["bare torch.mm into a preallocated output (the arithmetic alone)"]
    expected = translate_chunks(bridge, x)
    got = np.load(folder / "out.npy", mmap_mode="r")
    equal = bool(all(np.array_equal(got[s : s + CHUNK], e) for s, e in expected))
    del got, expected
    (folder / "out.npy").unlink()
    (folder / "replaced.npy").unlink()
    throughput = {
        "rows": n,
        "shape": f"({n}, {D_SOURCE}) -> ({n}, {D_TARGET}) float32",
        "best_seconds": {k: round(v, 3) for k, v in best.items()},
        "all_seconds": {k: [round(t, 3) for t in v] for k, v in wall.items()},
        "cpu_seconds_of_best": {k: round(cpu[k][wall[k].index(best[k])], 3) for k in wall},
        "ratio_to_matmul": {k: round(v / matmul, 3) for k, v in best.items()},
        "ratio_to_arithmetic": {k: round(v / arithmetic, 3) for k, v in best.items()},
        "rows_per_second": {k: round(n / v) for k, v in best.items()},
        "sync_after_file_run_seconds": [round(t, 3) for t in sync_times],
        "output_equals_bridge_translate_chunkwise": equal,
        "bar": "translate_vectors .npy -> .npy within 1.3x of the bare matmul",
    }
    print(json.dumps(throughput, indent=1), flush=True)
    return throughput


def translate_chunks(bridge: LatentBridge, x: torch.Tensor, chunk: int = CHUNK):
    """(start, bridge.translate of rows start:start+chunk), lazily: what translate_vectors writes."""
    for start in range(0, len(x), chunk):
        yield start, bridge.translate(x[start : start + chunk].numpy())


def launch(
    prefix: list[str], args: argparse.Namespace, mode: str, chunk: int, out: Path, threads: int
) -> tuple[list[dict], float]:
    """Run a child (one process, or one per rank under ``prefix``): its reports and the command's wall time."""
    command = [*prefix, str(SCRIPT), "--child", mode, "--folder", str(args.folder), "--output", str(out)]
    command += ["--chunk-size", str(chunk), "--threads", str(threads)]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    start = time.perf_counter()
    ran = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=900)
    seconds = round(time.perf_counter() - start, 2)
    if ran.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{ran.stderr[-3000:]}")
    reports = [json.loads(path.read_text()) for path in sorted(args.folder.glob("report-*.json"))]
    for path in args.folder.glob("report-*.json"):
        path.unlink()
    return reports, seconds


def child(args: argparse.Namespace) -> None:
    """One migration and nothing else; prints its time and the process's memory before and after."""
    torch.set_num_threads(args.threads)
    accelerator = None
    if "LOCAL_RANK" in os.environ:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)
    bridge = LatentBridge.from_pretrained(args.folder / "bridge")
    bridge.translate(np.zeros((4, D_SOURCE), np.float32))  # load the kernels before the baseline
    before = status()
    start = time.perf_counter()
    if args.child == "translate":
        translate_vectors(
            bridge, args.folder / "in.npy", args.output, chunk_size=args.chunk_size, accelerator=accelerator
        )
    else:  # the alternative: numpy memory maps on both sides
        source = np.load(args.folder / "in.npy", mmap_mode="r")
        shape = (len(source), D_TARGET)
        target = np.lib.format.open_memmap(args.output, mode="w+", dtype=np.float32, shape=shape)
        with torch.no_grad():
            for s in range(0, len(source), args.chunk_size):
                target[s : s + args.chunk_size] = bridge(
                    torch.from_numpy(np.array(source[s : s + args.chunk_size]))
                )
        target.flush()
    seconds = time.perf_counter() - start
    after = status()
    rank = accelerator.process_index if accelerator else 0
    report = {
        "rank": rank,
        "migration_seconds": round(seconds, 3),
        "threads": torch.get_num_threads(),
        "peak_rss_mb_before": before["VmHWM"],
        "peak_rss_mb_after": after["VmHWM"],
        "peak_rss_mb_added": round(after["VmHWM"] - before["VmHWM"], 1),
        "rss_anon_mb_after": after["RssAnon"],
        "rss_file_mb_after": after["RssFile"],
    }
    (args.folder / f"report-{rank}.json").write_text(json.dumps(report))
    if accelerator is not None:
        accelerator.end_training()


def status() -> dict[str, float]:
    """Memory figures of /proc/self/status, in MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def markdown(p: dict) -> str:
    t, m, c = p["throughput"], p["memory"], p["processes"]
    n = t["rows"]
    data_gb = n * (D_SOURCE + D_TARGET) * 4 / 1e9
    lines = [
        f"{n:,} x {D_SOURCE} float32 unit vectors (a .npy file) translated into {D_TARGET} dimensions by a "
        f"Procrustes bridge (fitted on {ANCHORS:,} random anchors); best of {len(t['all_seconds'][next(iter(t['all_seconds']))])}, "
        "alternated.",
        "",
        "| (a) throughput | best s | rows/s | / bare matmul | / arithmetic alone | CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for name, seconds in t["best_seconds"].items():
        lines.append(
            f"| {name} | {seconds} | {t['rows_per_second'][name]:,} | {t['ratio_to_matmul'][name]} | "
            f"{t['ratio_to_arithmetic'][name]} | {t['cpu_seconds_of_best'][name]} |"
        )
    ratio = t["ratio_to_matmul"]["translate_vectors .npy -> .npy"]
    strict = t["ratio_to_arithmetic"]["translate_vectors .npy -> .npy"]
    lines += [
        "",
        f"Bar: translate_vectors within 1.3x of the bare matmul: **{ratio}x** "
        f"({'met' if ratio <= 1.3 else 'missed'}); of the arithmetic alone (no output allocated): **{strict}x** "
        f"({'met' if strict <= 1.3 else 'missed'}). Output equal to bridge.translate chunk by chunk: "
        f"{t['output_equals_bridge_translate_chunkwise']}. Write-back to disk after each file run (os.sync, "
        f"not timed in the call): {', '.join(f'{s:.1f}' for s in t['sync_after_file_run_seconds'])} s.",
        "",
        f"| (b) memory of a child doing only the migration ({data_gb:.1f} GB read and written) | chunk rows | "
        "peak RSS before, MB | peak RSS after, MB | added | RssFile after, MB | migration s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in m:
        label = (
            "translate_vectors"
            if r["mode"] == "translate"
            else "numpy memory maps (np.load mmap + open_memmap)"
        )
        lines.append(
            f"| {label} | {r['chunk_size']:,} | {r['peak_rss_mb_before']} | {r['peak_rss_mb_after']} | "
            f"{r['peak_rss_mb_added']} | {r['rss_file_mb_after']} | {r['migration_seconds']} |"
        )
    one, two = c["one_process_2_threads"], c["two_processes_1_thread_each"]
    lines += [
        "",
        f"| (c) processes (chunk {c['chunk_size']:,}) | command wall s | migration s | sha256 of the output |",
        "|---|---|---|---|",
        f"| 1 process, 2 threads | {one['command_seconds']} | {one['migration_seconds']} | `{one['sha256'][:16]}…` |",
        f"| 2 processes (torchrun), 1 thread each | {two['command_seconds']} | "
        f"{max(r['migration_seconds'] for r in two['ranks'])} | `{two['sha256'][:16]}…` |",
        "",
        f"Identical bytes on 1 and 2 processes: **{c['identical']}**. Whole benchmark: {p['total_seconds']} s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
