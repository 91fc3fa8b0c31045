"""The search objective: one home for how a label's mask is scored, ordered and compared exactly.

The C++ twin is csrc/objective.h (the kernels of both backends score and compare through it). An
objective owns:

- its per-region statistics: for AUROC the doubled rank sum S2 of a mask (mid-ranks doubled, so ties
  stay integers) and its size P, both integer sums over the mask's regions;
- its exact score: AUROC = (S2 - P (P + 1)) / (2 P (N - P)), a rational of integers, computed as one
  correctly rounded float64 division (2U = S2 - P (P + 1) stays below 2^53 for N up to 1.3e8);
- its order and ties: higher is better in "positive" mode, lower in "negative" (the ranks mirrored);
  equal floats are compared by exact cross products; then the search's own ties (shorter formula,
  then text) decide;
- its bound for exact search and certification (AUROC's knapsack bound over sorted region ranks,
  core/exact.py) and what p_value_search maximizes (the two-sided Mann-Whitney significance of a
  neuron's best label, core/stats.py).

AUROC is the first and, today, only objective (OBJECTIVES); a new one is a class here and an entry in
csrc/objective.h.

Example:
    >>> AUROC.score(torch.tensor([14]), torch.tensor([2]), 4).tolist()   # ranks 3 and 4 of 4
    [1.0]
"""

from __future__ import annotations

import torch


class Auroc:
    """INVERT's objective: the exact area under the ROC curve of a neuron's activations for a mask.

    Example:
        >>> Auroc.compare(14, 2, 10, 2, 4)    # AUC 1.0 against 0.5: +1
        1
    """

    name = "auroc"

    @staticmethod
    def rational(s2, p, n):
        """(numerator 2U = S2 - P (P + 1), denominator 2 P (N - P)) of the exact AUC, for tensors or ints."""
        return s2 - p * (p + 1), 2 * p * (n - p)

    @staticmethod
    def score(s2: torch.Tensor, positives: torch.Tensor, n: int) -> torch.Tensor:
        """float64 exact AUC of masks from their doubled rank sums s2 and sizes P (broadcast), NaN where
        P == 0 or P == N."""
        p = positives.to(s2.device)
        num, den = Auroc.rational(s2, p, n)
        auc = num.double() / den.double()  # |2U| <= N^2 / 2 < 2^53 for N < 1.3e8: exact integers
        return auc.masked_fill((p == 0) | (p == n), float("nan"))

    @staticmethod
    def mirrored(s2, p, n):
        """The doubled rank sum of the same mask under reversed ranks (rank r -> N + 1 - r): AUC -> 1 - AUC,
        how "negative" mode searches in the positive frame."""
        return 2 * (n + 1) * p - s2

    @staticmethod
    def compare(sa: int, pa: int, sb: int, pb: int, n: int) -> int:
        """-1, 0 or +1 as mask a's AUC is below, equal to or above mask b's, exactly (Python integers)."""
        na, da = Auroc.rational(sa, pa, n)
        nb, db = Auroc.rational(sb, pb, n)
        lhs, rhs = na * db, nb * da
        return (lhs > rhs) - (lhs < rhs)


AUROC = Auroc
OBJECTIVES = {Auroc.name: Auroc}


def objective(name: str):
    """The objective named `name` (OBJECTIVES), or a one-line error naming what exists.

    Example:
        >>> objective("auroc") is AUROC
        True
    """
    try:
        return OBJECTIVES[name]
    except (KeyError, TypeError):
        raise ValueError(f"objective: expected one of {sorted(OBJECTIVES)}, got {name!r}") from None
