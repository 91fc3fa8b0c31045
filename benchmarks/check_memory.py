"""Peak memory of `invert-fast explain` under --max-memory, against the same run with a large budget.

    python benchmarks/check_memory.py            # N = 200,000, D = 64, K = 200 dense concepts (10%), L = 3, B = 10
    python benchmarks/check_memory.py --quick    # N = 50,000, D = 16, K = 100 (for the test suite)

Each run is a fresh process (the CLI on .npy files: float32 activations, bool labels); its peak resident
memory is read from the OS (getrusage of the child). Reported beside it: the peak of a process that only
imports torch and invert_fast (the interpreter and torch, outside any budget). Exit status 1 when the
budgeted run exceeds --limit-mb or its labels differ from the large budget's.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_auroc import machine  # noqa: E402

PEAK = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)"
)


def peak_mb(argv: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one child process running argv (a non-zero exit is an error)."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PEAK, *argv], capture_output=True, text=True, check=True)
    kb, rc = out.stdout.split()[-2:]
    if rc != "0":
        raise SystemExit(f"check_memory: {' '.join(argv)} exited with {rc}")
    return int(kb) / 1024, time.perf_counter() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N = 50,000, D = 16, K = 100")
    p.add_argument("--budget-mib", type=int, default=64, help="--max-memory of the budgeted run (default 64)")
    p.add_argument(
        "--limit-mb", type=float, default=600, help="peak RSS the budgeted run must stay under (default 600)"
    )
    args = p.parse_args()
    n, d, k = (50_000, 16, 100) if args.quick else (200_000, 64, 200)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        g = np.random.default_rng(0)
        np.save(tmp / "a.npy", g.normal(size=(n, d)).astype(np.float32))
        np.save(tmp / "y.npy", g.random((n, k)) < 0.1)
        base, _ = peak_mb([sys.executable, "-c", "import torch, invert_fast"])
        cli = [sys.executable, "-m", "invert_fast", "explain", "--activations", str(tmp / "a.npy")]
        cli += ["--labels", str(tmp / "y.npy"), "-L", "3", "-B", "10", "--quiet"]
        budget = args.budget_mib << 20
        small, t_small = peak_mb([*cli, "--max-memory", str(budget), "--out", str(tmp / "small.csv")])
        large, t_large = peak_mb([*cli, "--out", str(tmp / "large.csv")])
        same = (tmp / "small.csv").read_bytes() == (tmp / "large.csv").read_bytes()
    print(f"# explain peak memory: N = {n:,}, D = {d}, K = {k} dense concepts (10%), L = 3, B = 10; {machine()}\n")
    print("| run | --max-memory | peak RSS (MB) | above import (MB) | seconds |\n|---|---:|---:|---:|---:|")
    print(f"| import torch + invert_fast | - | {base:.0f} | 0 | - |")
    print(f"| explain | {args.budget_mib} MiB | {small:.0f} | {small - base:.0f} | {t_small:.1f} |")
    print(f"| explain | default (2 GiB) | {large:.0f} | {large - base:.0f} | {t_large:.1f} |")
    print(f"\nsame labels with both budgets: {same}; budgeted peak {small:.0f} MB vs limit {args.limit_mb:.0f} MB")
    return 0 if same and small <= args.limit_mb else 1


if __name__ == "__main__":
    raise SystemExit(main())
