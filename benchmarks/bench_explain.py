"""INVERT for a whole layer (explain, L=3, B=10, limit_search=None): invert_fast vs the vectorised
torch peer, the published method and (optionally) another checkout of invert_fast.

    python benchmarks/bench_explain.py                      # D=2,048, N=50,000: (a) ImageNet shape, (b) dense
    python benchmarks/bench_explain.py --quick              # D=64, N=5,000
    python benchmarks/bench_explain.py --baseline ../old    # also time the checkout ../old (built in place)
    python benchmarks/bench_explain.py --device cuda
    python benchmarks/bench_explain.py --permutations 4 --skip-dense --peer-neurons 64   # + permutation cost

Timed: a fresh ConceptSet (built from the workload's labels), its regions, then explain. The peer is
baselines.torch_beam_search (feature batches, inclusion-exclusion, float32 GEMMs); it runs on
--peer-neurons neurons and its time is scaled to D (its cost is linear in D: one batch after another);
agreement = share of those neurons whose rank-0 AUC it matches within 1e-6. The published code
(lapalap/invert 1.1) scores every candidate formula with one AUROC over all N samples, one neuron at a
time: one exact torchmetrics binary AUROC at this N (mask evaluation not counted) x the candidates the
search scores per neuron x D.

With --permutations P, one more table: the cost of p_value_search on the ImageNet shape, explain with
permutations=P against permutations=0 on the same cached ConceptSet (each permutation is one more
batched search of the layer; the ranks are permuted, not recomputed), per permutation.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import shapes  # noqa: E402
from bench_auroc import machine, timed  # noqa: E402

import invert_fast as inv  # noqa: E402

L, B = 3, 10


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


def workload(name: str, n: int, quick: bool):
    """(labels [N, K] bool, names) of workload 'imagenet' or 'dense'."""
    if name == "imagenet":
        cs = shapes.imagenet_like_concepts(n, n // 50, int(n // 50 * 0.473))
    else:
        cs = shapes.dense_concepts(n, 100 if quick else 500)
    return cs.dense(), list(cs.names)


def time_explain(name: str, n: int, d: int, quick: bool, device: torch.device, repeat: int = 2):
    """(seconds: best of `repeat` runs of ConceptSet + regions + explain, results, concepts)."""
    labels, names = workload(name, n, quick)
    x = shapes.tied_activations(n, d).to(device)
    labels = labels.to(device)

    def run():
        cs = inv.ConceptSet(labels, names)
        cs.regions()
        return cs, inv.explain(x, cs, L=L, B=B)

    t, (cs, res) = timed(run, device, repeat=repeat)
    return t, res, cs


def baseline_seconds(checkout: str, name: str, n: int, d: int, quick: bool) -> float:
    """The same timing with another checkout of invert_fast (its package first on sys.path)."""
    code = (
        f"import sys; sys.path.insert(0, {os.path.abspath(checkout)!r}); sys.path.insert(1, {str(Path(__file__).parent)!r})\n"
        "import json, torch, bench_explain as b\n"
        f"t, _, _ = b.time_explain({name!r}, {n}, {d}, {quick}, torch.device('cpu'))\n"
        "print(json.dumps({'t': t, 'file': b.inv.__file__}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if not got["file"].startswith(os.path.abspath(checkout)):
        raise SystemExit(f"--baseline: {checkout} did not provide invert_fast (imported {got['file']})")
    return got["t"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--neurons", type=int, default=2048)
    p.add_argument("--samples", type=int, default=50_000)
    p.add_argument("--peer-neurons", type=int, default=256, help="neurons the torch peer runs on (default 256)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--skip-dense", action="store_true")
    p.add_argument("--baseline", metavar="DIR", help="another invert_fast checkout (built in place) to time alike")
    p.add_argument(
        "--permutations", type=int, default=0, help="also time p_value_search with P permutations (default 0: not)"
    )
    p.add_argument("--objectives", action="store_true", help="also time the search by every objective against AUROC's")
    args = p.parse_args()
    if args.quick:
        args.neurons, args.samples, args.peer_neurons = 64, 5000, 64
    from baselines import torch_beam_search

    n, d, dev = args.samples, args.neurons, torch.device(args.device)
    dp = min(d, args.peer_neurons)
    per_cand = published_seconds_per_candidate(n)
    print(f"# explain, L={L}, B={B}, limit_search=None, N={n}, D={d}; {machine()}")
    print(f"published method: {per_cand * 1e3:.2f} ms per candidate formula (torchmetrics exact AUROC, N={n})")
    print(f"torch peer: {dp} neurons timed, scaled to {d}; agreement = rank-0 AUC within 1e-6\n")
    head = "| workload | K | regions | invert_fast (s) | torch peer (s) | peer / invert_fast | agreement |"
    head += " published, extrapolated | speed-up |"
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    if args.baseline:
        head += " baseline checkout (s) | baseline / invert_fast |"
        rule += "---:|---:|"
    print(head + "\n" + rule)
    names = ["imagenet"] + ([] if args.skip_dense else ["dense"])
    titles = {"imagenet": "(a) ImageNet shape", "dense": "(b) dense multi-label"}
    for name in names:
        t, res, cs = time_explain(name, n, d, args.quick, dev)
        assert len(res) == d and all(len(r) == B for r in res)
        x = shapes.tied_activations(n, d)[:, :dp]
        tp0 = time.perf_counter()
        peer = torch_beam_search(x, cs.dense().cpu(), L=L, B=B)
        tp = (time.perf_counter() - tp0) * d / dp
        ours = torch.tensor([r[0].auc for r in res[:dp]], dtype=torch.float64)
        agree = float(((ours - peer).abs() <= 1e-6).double().mean())
        k = len(cs)
        pub = per_cand * candidates_per_neuron(k, L, B) * d
        row = (
            f"| {titles[name]} | {k} | {cs.regions().num_regions} | {t:.2f} | {tp:.1f} | {tp / t:.1f}x | "
            f"{agree:.1%} | {pub:,.0f} s ({pub / 86400:.1f} days) | {pub / t:,.0f}x |"
        )
        if args.baseline:
            tb = baseline_seconds(args.baseline, name, n, d, args.quick)
            row += f" {tb:.2f} | {tb / t:.2f}x |"
        print(row, flush=True)
    if args.permutations > 0:
        permutation_cost(n, d, args.quick, dev, args.permutations)
    if args.objectives:
        objective_cost(names, n, d, args.quick, dev)


def objective_cost(names, n: int, d: int, quick: bool, device: torch.device):
    """Print explain by each objective against AUROC's on the same workloads (regions cached, best of 2)."""
    from invert_fast.core.objectives import OBJECTIVES

    print("\n| workload | objective | seconds | / auroc |\n|---|---|---:|---:|")
    for name in names:
        labels, cnames = workload(name, n, quick)
        cs = inv.ConceptSet(labels.to(device), cnames)
        cs.regions()
        x = shapes.tied_activations(n, d).to(device)
        base = None
        for obj in OBJECTIVES:
            t, _ = timed(
                lambda x=x, cs=cs, obj=obj: inv.explain(x, cs, L=L, B=B, objective=obj, alpha=0.01), device, repeat=2
            )
            base = t if base is None else base
            print(f"| {name} | {obj} | {t:.2f} | {t / base:.2f}x |", flush=True)


def permutation_cost(n: int, d: int, quick: bool, device: torch.device, perms: int):
    """Print explain with `perms` permutations against without, ImageNet shape, regions cached."""
    labels, names = workload("imagenet", n, quick)
    cs = inv.ConceptSet(labels.to(device), names)
    cs.regions()
    x = shapes.tied_activations(n, d).to(device)
    t0, _ = timed(lambda: inv.explain(x, cs, L=L, B=B), device, repeat=2)
    tp, res = timed(lambda: inv.explain(x, cs, L=L, B=B, permutations=perms, seed=0), device, repeat=1)
    assert all(0 < r[0].p_value_search <= 1 for r in res)
    per = (tp - t0) / perms
    print(f"\n# p_value_search on the ImageNet shape (D={d}, N={n}, L={L}, B={B}), ConceptSet and regions cached\n")
    print("| permutations=0 (s) | permutations=P (s) | P | per permutation (s) | per permutation / plain search |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {t0:.2f} | {tp:.2f} | {perms} | {per:.2f} | {per / t0:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
