"""NeuronEval's sanity tests for the six objectives, and what they mean for the search (issue 38, section 2).

Part 1 reproduces the theoretical check of Oikarinen et al., "Evaluating Neuron Explanations: A Unified
Framework with Sanity Checks" (ICML 2025): a neuron that is exactly a concept c (activation 1[c] over
N = 500,000 samples, |c| = gamma N) against explanations with missing labels (each positive of c kept with
probability 0.5) and extra labels (each negative of c turned positive with probability |c| / (N - |c|)).
A metric passes a setting when, for a seed, it drops by more than 0.001 of its range from its value for c
itself; the table prints the share of seeds where it does. Every value is what `explain` reports for the
label (AUROC of the activations for the mask, as INVERT; IoU, F1 and AUPRC against the top-gamma samples
T, which are c here; correlation and cosine of the activations and the mask).

Part 2 is the search-level consequence: planted neurons = 1[M] + N(0, sigma^2), M a concept or a union of
two, of share gamma, among 29 other random concepts of 2-42%; for each objective (alpha = gamma for the
overlap objectives), how often the top label's mask is M itself, a narrower mask (strictly inside M), a
broader one (strictly containing M) or another.

    python benchmarks/bench_sanity.py                 # both parts, 100 seeds and 10 seeds (~5 minutes)
    python benchmarks/bench_sanity.py --quick         # 10 seeds and 3 seeds
"""

from __future__ import annotations

import argparse
import time

import torch

import invert_fast as inv
from invert_fast.core.metrics import METRICS

GAMMAS = (0.499, 0.1, 0.01, 0.001, 0.0001)
COLUMNS = ("auc", *METRICS)  # the six: AUROC, IoU, F1, AUPRC, correlation, cosine
RANGES = {"correlation": 2.0, "cosine": 2.0}  # [-1, 1]; the others [0, 1]


def label_metrics(x: torch.Tensor, masks: torch.Tensor, gamma: float) -> dict[str, list[float]]:
    """Each metric of the labels masks [N, M] for the neuron x [N, 1], as explain reports them (L = 1, one
    label per mask: every positive atom outranks its negation here)."""
    m = masks.shape[1]
    cs = inv.ConceptSet(masks, [f"m{j}" for j in range(m)])
    res = inv.explain(x, cs, L=1, B=m, max_fraction=1.0, distinct=False, alpha=gamma)[0]
    by_name = {str(e.formula): e for e in res}
    missing = [f"m{j}" for j in range(m) if f"m{j}" not in by_name]
    if missing:
        raise SystemExit(f"labels {missing[:3]} were not returned; the table would be incomplete")
    return {c: [getattr(by_name[f"m{j}"], c) for j in range(m)] for c in COLUMNS}


def neuroneval(n: int, seeds: int, eps: float = 0.001) -> None:
    print(f"# Part 1: NeuronEval's missing- and extra-labels tests, N = {n:,}, {seeds} seeds, eps = {eps} of the range")
    print("# share of seeds where the metric drops by more than eps; the last column averages over gamma\n")
    head = " | ".join(f"γ = {g}" for g in GAMMAS)
    print(f"| test | metric | {head} | mean |\n|---|---|" + "---:|" * (len(GAMMAS) + 1))
    rows: dict[tuple[str, str], list[float]] = {}
    for gamma in GAMMAS:
        g = torch.Generator().manual_seed(int(gamma * 1e6))
        size = round(gamma * n)
        c = torch.zeros(n, dtype=torch.bool)
        c[torch.randperm(n, generator=g)[:size]] = True
        x = c.double().unsqueeze(1)
        for test in ("missing", "extra"):
            if test == "missing":
                keep = torch.rand(n, seeds, generator=g) < 0.5
                variants = c.unsqueeze(1) & keep
            else:
                turn = torch.rand(n, seeds, generator=g) < size / (n - size)
                variants = c.unsqueeze(1) | turn
            values = label_metrics(x, torch.cat([c.unsqueeze(1), variants], 1), gamma)
            for metric in COLUMNS:
                base, rest = values[metric][0], torch.tensor(values[metric][1:], dtype=torch.float64)
                drop = base - rest
                rows.setdefault((test, metric), []).append(
                    float((drop > eps * RANGES.get(metric, 1.0)).double().mean())
                )
    for (test, metric), shares in rows.items():
        cells = " | ".join(f"{s:.0%}" for s in shares)
        print(f"| {test} | {metric} | {cells} | {sum(shares) / len(shares):.0%} |", flush=True)


def planted(n: int, seeds: int) -> None:
    print(
        f"\n# Part 2: planted neurons 1[M] + N(0, σ²), N = {n:,}, 29 other concepts of 2-42%, L = 3, B = 5, {seeds} seeds"
    )
    print("# top label's mask: M itself / narrower (inside M) / broader (containing M) / other\n")
    objectives = ("auroc", "iou", "f1", "auprc", "correlation", "cosine")
    print("| M | γ | σ | " + " | ".join(objectives) + " |\n|---|---:|---:|" + "---|" * len(objectives))
    for kind in ("concept", "union of two"):
        for gamma in (0.002, 0.02, 0.2):
            for sigma in (0.2, 0.5):
                counts = {o: [0, 0, 0, 0] for o in objectives}
                for s in range(seeds):
                    g = torch.Generator().manual_seed(1000 * s + 7)
                    dens = torch.rand(31, generator=g) * 0.4 + 0.02
                    dens[:2] = gamma if kind == "concept" else gamma / 2
                    y = torch.rand(n, 31, generator=g) < dens
                    if kind == "concept":
                        y = y[:, [0, *range(2, 31)]]  # 30 concepts, the planted first
                        target = y[:, 0]
                    else:
                        y = y[:, :30]
                        target = y[:, 0] | y[:, 1]
                    x = target.double().unsqueeze(1) + sigma * torch.randn(n, 1, generator=g, dtype=torch.float64)
                    cs = inv.ConceptSet(y, [f"c{k}" for k in range(30)])
                    for o in objectives:
                        e = inv.explain(x, cs, L=3, B=5, objective=o, alpha=gamma, max_fraction=0.5)[0][0]
                        m = e.formula.mask(cs)
                        if torch.equal(m, target):
                            counts[o][0] += 1
                        elif not (m & ~target).any():
                            counts[o][1] += 1
                        elif not (target & ~m).any():
                            counts[o][2] += 1
                        else:
                            counts[o][3] += 1
                cells = " | ".join("/".join(str(v) for v in counts[o]) for o in objectives)
                print(f"| {kind} | {gamma} | {sigma} | {cells} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10 and 3 seeds instead of 100 and 10")
    p.add_argument("--samples", type=int, default=500_000, help="N of part 1 (NeuronEval's: 500,000)")
    p.add_argument("--skip-planted", action="store_true")
    args = p.parse_args()
    t0 = time.perf_counter()
    neuroneval(args.samples, 10 if args.quick else 100)
    if not args.skip_planted:
        planted(20_000, 3 if args.quick else 10)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
