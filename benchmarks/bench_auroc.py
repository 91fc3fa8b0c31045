"""All-atoms AUROC matrix in the published ImageNet shape: invert_fast vs what exists.

    python benchmarks/bench_auroc.py                 # N=50,000, K=1,473, D=2,048 (a few minutes)
    python benchmarks/bench_auroc.py --quick         # small shape, seconds
    python benchmarks/bench_auroc.py --crossover     # sparse vs dense product by concept density
    python benchmarks/bench_auroc.py --device cuda   # GPU (needs a CUDA build)

torchmetrics and scikit-learn score one neuron (one pair) at a time; they are timed on a subset and
extrapolated linearly (said in the table). The plain torch matmul runs the whole matrix.
"""

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import baselines  # noqa: E402
import shapes  # noqa: E402

import invert_fast as inv  # noqa: E402


def timed(fn, device, repeat=1):
    best, out = float("inf"), None
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def main_matrix(args):
    device = torch.device(args.device)
    n, d = args.samples, args.neurons
    cs = shapes.imagenet_like_concepts(n, args.classes, args.unions)
    x = shapes.tied_activations(n, d)
    k = len(cs)
    print(f"# AUROC matrix: N={n} samples, K={k} concepts, D={d} neurons, float32 with ties; {machine()}")
    xs, csd = x.to(device), cs.to(device)
    t_regions, _ = timed(lambda: csd.regions(), device)
    t_ours, auc = timed(lambda: inv.auroc(xs, csd), device, repeat=args.repeat)
    auc = auc.cpu()
    rows = [("invert_fast.auroc", t_ours, "measured", None)]
    y = cs.dense()

    t_floor, _ = timed(lambda: np.sort(x.numpy().T.copy(), axis=1), torch.device("cpu"))
    rows.append(("ranking floor: numpy sort of [D, N] (not AUROC)", t_floor, "measured", None))

    if not args.skip_matmul:
        t_mm, auc_mm = timed(lambda: baselines.torch_matmul_auroc(x, y), torch.device("cpu"))
        diff = (auc_mm - auc).abs().nan_to_num(0).max().item()
        rows.append(("plain torch float64 rank-sum matmul", t_mm, f"measured, max |diff| {diff:.1e}", None))

    dm = min(d, args.tm_neurons)
    t_tm, auc_tm = timed(lambda: baselines.torchmetrics_auroc(x[:, :dm], y), torch.device("cpu"))
    diff = (auc_tm - auc[:dm]).abs().nan_to_num(0).max().item()
    rows.append(
        (
            "torchmetrics multilabel_auroc (exact)",
            t_tm * d / dm,
            f"{dm} neurons x {d / dm:.0f}, max |diff| {diff:.1e}",
            None,
        )
    )

    g = torch.Generator().manual_seed(1)
    rows_d = torch.randint(0, d, (args.sk_pairs,), generator=g).tolist()
    pairs = list(zip(rows_d, torch.randint(0, k, (args.sk_pairs,), generator=g).tolist(), strict=True))
    t_sk, sk = timed(lambda: baselines.sklearn_auroc(x.numpy(), y.numpy(), pairs), torch.device("cpu"))
    diff = max(abs(v - auc[i, j].item()) for v, (i, j) in zip(sk, pairs, strict=True))
    rows.append(
        (
            "scikit-learn roc_auc_score",
            t_sk * d * k / len(pairs),
            f"{len(pairs)} pairs x {d * k / len(pairs):.0f}, max |diff| {diff:.1e}",
            None,
        )
    )

    print(f"\nconcept regions (once per concept set): {t_regions:.3f} s; {csd.regions().num_regions} regions\n")
    print("| method | time (s) | invert_fast speed-up | how |\n|---|---:|---:|---|")
    for name, t, how, _ in rows:
        print(f"| {name} | {t:,.2f} | {t / t_ours:,.1f}x | {how} |")


def crossover(args):
    """Time the sparse and dense rank-sum products by concept density (regions = samples)."""
    device = torch.device(args.device)
    n, d, k = 20_000, 256, 200
    x = shapes.tied_activations(n, d).to(device)
    print(f"# sparse vs dense concept products: N={n}, D={d}, K={k}; {machine()}")
    print("| density | sparse (s) | dense (s) |\n|---:|---:|---:|")
    for dens in (0.01, 0.03, 0.06, 0.12, 0.25, 0.5):
        cs = shapes.dense_concepts(n, k, dens, dens).to(device)
        cs.regions()
        ts, a = timed(lambda cs=cs: inv.auroc(x, cs, method="sparse"), device, repeat=2)
        td, b = timed(lambda cs=cs: inv.auroc(x, cs, method="dense"), device, repeat=2)
        assert torch.equal(a.nan_to_num(-1), b.nan_to_num(-1))
        print(f"| {dens:.2f} | {ts:.3f} | {td:.3f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--neurons", type=int, default=2048)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--unions", type=int, default=473)
    p.add_argument("--tm-neurons", type=int, default=2, help="neurons timed for torchmetrics")
    p.add_argument("--sk-pairs", type=int, default=200, help="(neuron, concept) pairs timed for scikit-learn")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--skip-matmul", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="N=5,000, 100 classes + 47 unions, D=128")
    p.add_argument("--crossover", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.samples, args.neurons, args.classes, args.unions, args.sk_pairs = 5000, 128, 100, 47, 20
    if args.crossover:
        crossover(args)
    else:
        main_matrix(args)


if __name__ == "__main__":
    main()
