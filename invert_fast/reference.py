"""Slow, obviously correct definitions that the fast paths are tested against."""

from fractions import Fraction


def doubled_midranks(values):
    """2 * mid-rank of each value (ranks 1..N, ties share their mean rank), as Python ints."""
    return [sum(2 if u < v else 1 if u == v else 0 for u in values) + 1 for v in values]


def auroc_pairs(values, mask):
    """AUROC as a Fraction by counting pairs: P(inside > outside) + 1/2 P(equal); None if undefined."""
    pos = [v for v, m in zip(values, mask, strict=True) if m]
    neg = [v for v, m in zip(values, mask, strict=True) if not m]
    if not pos or not neg:
        return None
    wins = sum(Fraction(1) if p > q else Fraction(1, 2) if p == q else 0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def auroc_reference(activations, labels):
    """[D][K] float AUROC (NaN where undefined) of columns of activations [N][D] vs labels [N][K]."""
    cols = list(zip(*activations, strict=True))
    masks = list(zip(*labels, strict=True))
    return [[float(a) if (a := auroc_pairs(c, m)) is not None else float("nan") for m in masks] for c in cols]
