"""`invert-fast audit`: the spurious-correlation audit on a case with a known answer.

    invert-fast audit                   # a Fashion-MNIST CNN trained with a patch shortcut on "Shirt", and its clean twin
    invert-fast audit --case overlay    # ImageNet MobileNetV2 and a text overlay on Fashion-MNIST images (no known answer)

Both models are trained here on first use (cases/shortcut.py, cached in out/cache) and audited the
same way (io/audit.py): the units of the second conv block and the hidden layer labelled over 5,000
test images, half of them patched (independently of their class), with the ten classes and `patch` as
concepts; then the other 5,000 test images not of the shortcut's class, clean and patched.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ..cases import shortcut
from ..cases.zoo import FASHION_MNIST_CLASSES, load_fashion_mnist
from ..core.concepts import ConceptSet
from ..io.audit import audit
from .argtypes import int_at_least

LAYERS = ["features.4", "classifier.1"]


def shortcut_case(n_audit: int = 5000, seed: int = 0):
    """(audit inputs, their concepts, clean inputs of the other classes, the same patched, their labels):
    the first n_audit test images, a random half patched; the rest, shortcut class left out."""
    images, labels = load_fashion_mnist("test")
    rng = np.random.default_rng(seed)
    a_img, a_lab = images[:n_audit].copy(), labels[:n_audit]
    patched = rng.random(len(a_img)) < 0.5
    a_img[patched] = shortcut.add_patch(a_img[patched])
    concepts = ConceptSet.from_classes(a_lab, list(FASHION_MNIST_CLASSES)).concat(
        ConceptSet(
            torch.from_numpy(patched).unsqueeze(1),
            ["patch"],
            descriptions=["a white 4 x 4 patch in the top-left corner"],
        )  # fmt: skip
    )
    keep = labels[n_audit:] != shortcut.SHORTCUT_CLASS
    e_img, e_lab = images[n_audit:][keep], labels[n_audit:][keep]
    return (shortcut.fashion_tensor(a_img), concepts, shortcut.fashion_tensor(e_img),
            shortcut.fashion_tensor(shortcut.add_patch(e_img)), torch.from_numpy(e_lab))  # fmt: skip


def overlay_case(n: int = 1000, size: int = 160, seed: int = 0):
    """(audit inputs, their concepts, clean inputs, the same with the overlay): MobileNetV2's inputs of the
    first n Fashion-MNIST test images, a random half with the text overlay; the next n, without and with it."""
    images, labels = load_fashion_mnist("test")
    mask = shortcut.text_mask(size)
    rng = np.random.default_rng(seed)
    on = rng.random(n) < 0.5
    x = torch.cat([shortcut.imagenet_tensor_with_text(images[i : i + 100], size, None) for i in range(0, n, 100)])
    x[torch.from_numpy(on)] = shortcut.imagenet_tensor_with_text(images[:n][on], size, mask)
    concepts = ConceptSet.from_classes(labels[:n], list(FASHION_MNIST_CLASSES)).concat(
        ConceptSet(
            torch.from_numpy(on).unsqueeze(1),
            ["text"],
            descriptions=[f"the text {shortcut.OVERLAY_TEXT!r} along the bottom"],
        )  # fmt: skip
    )
    rest = images[n : 2 * n]
    return (
        x,
        concepts,
        shortcut.imagenet_tensor_with_text(rest, size, None),
        shortcut.imagenet_tensor_with_text(rest, size, mask),
    )


def run_overlay(args) -> int:
    from ..cases.zoo import load_mobilenet_v2
    from ..concepts.wordnet import imagenet_classes

    t0 = time.perf_counter()
    x, concepts, clean, texted = overlay_case(args.audit_images or 1000)
    model = load_mobilenet_v2()
    names = [n for _, n in imagenet_classes()]
    print(f"audit: ImageNet MobileNetV2, {len(x)} Fashion-MNIST test images at 160 px, "
          f"{int(concepts.mask('text').sum())} with the text {shortcut.OVERLAY_TEXT!r} (DejaVu Sans Bold, along the "
          f"bottom); effects on {len(clean)} other test images with and without it; layer features.18; INVERT L=3, "
          f"B=5, min_fraction 0.02, {args.permutations} permutations; no known answer")  # fmt: skip
    a = audit(model, x, concepts, "text", ["features.18"], output="classifier.1", clean=clean, with_nuisance=texted,
              labels=None, classes=names, permutations=args.permutations, batch_size=64)  # fmt: skip
    print(a.text())
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


def run(args) -> int:
    if args.case == "overlay":
        return run_overlay(args)
    t0 = time.perf_counter()
    x, concepts, clean, patched, y = shortcut_case(args.audit_images or 5000)
    print(f"audit: {len(x)} Fashion-MNIST test images, {int(concepts.mask('patch').sum())} patched; effects on "
          f"{len(clean)} other test images not of class {FASHION_MNIST_CLASSES[shortcut.SHORTCUT_CLASS]!r}, clean and "
          f"patched; layers {', '.join(LAYERS)}; INVERT L=3, B=5, min_fraction 0.02, {args.permutations} "
          "permutations")  # fmt: skip
    found = {}
    for kind in ("shortcut", "clean"):
        t = time.perf_counter()
        model = shortcut.train_fashion_cnn(kind == "shortcut", epochs=args.epochs, progress=not args.quiet)
        a = audit(model, x, concepts, "patch", LAYERS, output="classifier.2", clean=clean, with_nuisance=patched,
                  labels=y, classes=FASHION_MNIST_CLASSES, permutations=args.permutations)  # fmt: skip
        found[kind] = a
        print(f"\n== model trained {'with the patch on 95% of Shirt images' if kind == 'shortcut' else 'cleanly'} "
              f"({time.perf_counter() - t:.1f} s)")  # fmt: skip
        print(a.text())
    ok = bool(found["shortcut"].flagged) and not found["clean"].flagged
    print(f"\nthe audit {'finds' if found['shortcut'].flagged else 'misses'} the planted shortcut and flags "
          f"{len(found['clean'].flagged)} unit(s) of the clean model; total {time.perf_counter() - t0:.1f} s")  # fmt: skip
    return 0 if ok else 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", choices=["shortcut", "overlay"], default="shortcut",
                   help="shortcut: a Fashion CNN trained here with a planted patch shortcut, and its clean twin "
                   "(default); overlay: ImageNet MobileNetV2 and a text overlay (no known answer)")  # fmt: skip
    p.add_argument("--permutations", type=int_at_least(1), default=99,
                   help="permutations for the search-corrected p-values of the flags (default 99)")  # fmt: skip
    p.add_argument("--epochs", type=int_at_least(1), default=2, help="training epochs of both models (default 2)")
    p.add_argument("--audit-images", type=int_at_least(100), default=None,
                   help="test images the units are labelled on (default 5,000; overlay: 1,000; the next as many "
                   "measure the effects)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no training progress")
