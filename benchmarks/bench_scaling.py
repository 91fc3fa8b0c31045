"""How explain scales: time and peak memory against D, N and K, out of core, and 2 processes vs 1.

    python benchmarks/bench_scaling.py               # the full table (D to 10^5, N to 10^6; ~15 min on 2 cores)
                                                     # (D sweep at N = 10^4; N sweep with D = 100; K sweep at D = 10^3)
    python benchmarks/bench_scaling.py --quick       # small sizes
    python benchmarks/bench_scaling.py --device cuda

Every configuration runs in a fresh process that labels a neuron-major on-disk store (written
beforehand, float32, ReLU-like values with ties) with explain_to_file under a fixed memory budget
(--max-memory, default 1 GiB), rows streamed to the CSV as chunks finish (keep_results=False), L = 3, B = 5, concepts = K one-hot classes; "peak RSS" is that
process's maximum resident memory (torch and the interpreter included). The distributed row runs
`torchrun --nproc_per_node=2` (gloo, one thread each) against one process with two threads.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_auroc import machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def write_store(folder: Path, n: int, d: int, k: int) -> tuple[Path, Path]:
    """A neuron-major [N, D] float32 store (written block by block) and [N] class labels."""
    path = folder / f"acts_{n}x{d}.neurons.npy"
    labels = folder / f"y_{n}_{k}.npy"
    if not labels.exists():
        np.save(labels, np.random.default_rng(1).integers(0, k, n))
    if not path.exists():  # written with plain writes: a memory map would inflate this process's RSS
        g = np.random.default_rng(0)
        header = {"descr": "<f4", "fortran_order": False, "shape": (d, n)}
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            step = max(1, 2**26 // n)
            for d0 in range(0, d, step):
                block = g.standard_normal((min(step, d - d0), n), dtype=np.float32)
                f.write(np.maximum(block, 0).round(2).tobytes())  # ReLU-like, many ties
    return path, labels


def run_one(store: Path, labels: Path, k: int, device: str, max_memory: int, threads: int) -> dict:
    """Label the store in a fresh process; return seconds and peak RSS."""
    code = f"""
import json, time, numpy as np, torch
torch.set_num_threads({threads})
import invert_fast as inv
from invert_fast.io.runner import explain_to_file
from invert_fast.io.store import NeuronStore
cs = inv.ConceptSet.from_classes(np.load({str(labels)!r}), [f"c{{i}}" for i in range({k})])
t = time.perf_counter()
res = explain_to_file(NeuronStore({str(store)!r}), cs, {str(store.parent / "out.csv")!r}, chunk=4096,
                      L=3, B=5, max_memory={max_memory}, device={device!r}, keep_results=False)
# VmHWM: this process's own peak (ru_maxrss can carry the parent's peak over fork).
hwm = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(json.dumps({{"seconds": time.perf_counter() - t, "neurons": len(res), "peak_rss_mb": hwm / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_torchrun(store: Path, labels: Path, procs: int) -> float:
    """Seconds of `torchrun --nproc_per_node=procs -m invert_fast explain` on the store (one thread per process)."""
    out = store.parent / f"dist_{procs}.csv"
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}", "--master_port=29517"]
    cmd += ["-m", "invert_fast", "explain", "--activations", str(store), "--labels", str(labels)]
    cmd += ["-L", "3", "-B", "5", "--chunk", "1024", "--quiet", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, 2 // procs))}
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-memory", type=int, default=2**30)
    ap.add_argument("--folder", default=None, help="where the stores are written (default: a temporary folder)")
    args = ap.parse_args(argv)
    scale = 10 if args.quick else 1
    ds = [1000, 10_000 // scale, 100_000 // scale]
    ns = [10_000, 100_000 // scale, 1_000_000 // scale]
    ks = [10, 100, 1000]
    threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp)
        print(f"# {machine()}; explain L=3, B=5, max_memory {args.max_memory >> 20} MiB, device {args.device}")
        print(
            "| varied | N | D | K | store | seconds | neurons/s | peak RSS (MB) |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        )
        # The N sweep labels 100 neurons: the cost per neuron grows with N, the table shows by how much.
        configs = [("D", 10_000, d, 100) for d in ds] + [("N", n, 100, 100) for n in ns]
        configs += [("K", 10_000, 1000, k) for k in ks if k != 100]
        for what, n, d, k in configs:
            store, labels = write_store(folder, n, d, k)
            r = run_one(store, labels, k, args.device, args.max_memory, threads)
            gb = n * d * 4 / 1e9
            print(
                f"| {what} | {n:,} | {d:,} | {k:,} | {gb:.2f} GB | {r['seconds']:.1f} | {d / r['seconds']:,.0f} | {r['peak_rss_mb']:,.0f} |",
                flush=True,
            )
            if what != "D" or d != ds[-1]:
                store.unlink()
        if args.device == "cpu":
            store, labels = write_store(folder, 10_000, 10_000 // scale, 100)
            one, two = run_torchrun(store, labels, 1), run_torchrun(store, labels, 2)
            print(
                f"\ndistributed, N = 10,000, D = {10_000 // scale:,}, K = 100: 1 process x {threads} threads {one:.1f} s; "
                f"torchrun 2 processes (gloo) x 1 thread {two:.1f} s; speed-up {one / two:.2f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
