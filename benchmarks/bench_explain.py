"""INVERT for a whole layer (explain, L=3, B=10, limit_search=None): invert_fast vs the published method.

    python benchmarks/bench_explain.py             # D=2,048, N=50,000: (a) ImageNet shape, (b) dense multi-label
    python benchmarks/bench_explain.py --quick     # D=64, N=5,000
    python benchmarks/bench_explain.py --device cuda

The published code (lapalap/invert 1.1) scores every candidate formula with one AUROC over all N
samples, one neuron at a time. Its cost is measured here as the time of one exact torchmetrics
binary AUROC at this N (the lower bound of one candidate: mask evaluation not counted), times the
number of candidates the search scores per neuron, times D.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import shapes  # noqa: E402
from bench_auroc import machine, timed  # noqa: E402

import invert_fast as inv  # noqa: E402


def published_seconds_per_candidate(n: int, repeat: int = 30) -> float:
    """Median time of one exact torchmetrics binary AUROC over n samples (the published per-formula cost)."""
    from torchmetrics.functional.classification import binary_auroc

    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, generator=g).relu()
    times = []
    for _ in range(repeat):
        mask = (torch.rand(n, generator=g) < 0.1).int()
        t = time.perf_counter()
        binary_auroc(a, mask, thresholds=None)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def candidates_per_neuron(k: int, L: int, B: int) -> int:
    """Formulas the published search scores per neuron with limit_search=None: 2K atoms, then per
    extra length B beams x 2K atoms x (AND, OR)."""
    return 2 * k + (L - 1) * B * 2 * k * 2


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--neurons", type=int, default=2048)
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--skip-dense", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.neurons, args.samples = 64, 5000
    n, d, dev = args.samples, args.neurons, torch.device(args.device)
    L, B = 3, 10
    per_cand = published_seconds_per_candidate(n)
    print(f"# explain, L={L}, B={B}, limit_search=None, N={n}, D={d}; {machine()}")
    print(f"published method: {per_cand * 1e3:.2f} ms per candidate formula (torchmetrics exact AUROC, N={n})\n")
    workloads = [("(a) ImageNet shape", shapes.imagenet_like_concepts(n, n // 50, int(n // 50 * 0.473)))]
    if not args.skip_dense:
        workloads.append(("(b) dense multi-label", shapes.dense_concepts(n, 500 if not args.quick else 100)))
    print(
        "| workload | K | regions | invert_fast (s) | published, extrapolated | speed-up |\n|---|---:|---:|---:|---:|---:|"
    )
    for name, cs in workloads:
        x = shapes.tied_activations(n, d).to(dev)
        csd = cs.to(dev)
        t_reg, _ = timed(lambda csd=csd: csd.regions(), dev)
        t, res = timed(lambda x=x, csd=csd: inv.explain(x, csd, L=L, B=B), dev)
        t += t_reg
        k = len(cs)
        pub = per_cand * candidates_per_neuron(k, L, B) * d
        print(
            f"| {name} | {k} | {csd.regions().num_regions} | {t:.2f} | {pub:,.0f} s ({pub / 86400:.1f} days) | {pub / t:,.0f}x |"
        )
        assert len(res) == d and all(len(r) == B for r in res)


if __name__ == "__main__":
    main()
