"""Mann-Whitney U p-values from rank sums, and multiple-testing adjustment.

p-values follow scipy.stats.mannwhitneyu(inside, outside, method="asymptotic"): the normal
approximation with tie correction and continuity correction. They are computed through
log Phi(-z), so they stay accurate (as log10 p) where p itself underflows to 0.
"""

from __future__ import annotations

import math

import torch

ALTERNATIVES = ("two-sided", "greater", "less")
ADJUSTMENTS = (None, "bh", "bonferroni")


def mannwhitney_pvalues(
    s2: torch.Tensor, positives: torch.Tensor, n: int, tie_sum: torch.Tensor, alternative: str = "two-sided"
) -> tuple[torch.Tensor, torch.Tensor]:
    """p-values of inside vs outside a mask, from its doubled rank sum.

    Args:
        s2: [...] int64 doubled rank sums of the masks (inside).
        positives: [...] int64 mask sizes P (broadcastable with s2).
        n: number of samples N.
        tie_sum: [...] float64 sum over tie groups of t^3 - t of the neuron (broadcastable).
        alternative: "two-sided", "greater" (inside activates more) or "less".

    Returns:
        (p, log10_p), both [...] float64; NaN where P == 0 or P == N.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative: expected one of {ALTERNATIVES}, got {alternative!r}")
    p1 = positives.double()
    p2 = n - p1
    tie_sum = torch.as_tensor(tie_sum, dtype=torch.float64, device=p1.device)
    u1 = (s2.double() - p1 * (p1 + 1)) / 2  # U of the inside sample
    u2 = p1 * p2 - u1
    u = {"two-sided": torch.maximum(u1, u2), "greater": u1, "less": u2}[alternative]
    mu = p1 * p2 / 2
    sigma = torch.sqrt(p1 * p2 / 12 * ((n + 1) - tie_sum / (n * (n - 1))))
    z = (u - mu - 0.5) / sigma
    log_p = torch.special.log_ndtr(-z)
    if alternative == "two-sided":
        log_p = torch.clamp(log_p + math.log(2), max=0.0)
    undefined = (p1 == 0) | (p2 == 0) | (sigma == 0)
    log_p = log_p.masked_fill(undefined, float("nan"))
    # sigma == 0 (all values tied) gives p = 1 in scipy; keep that where the mask is non-trivial.
    log_p = torch.where((sigma == 0) & (p1 > 0) & (p2 > 0), torch.zeros_like(log_p), log_p)
    return log_p.exp(), log_p / math.log(10)


def adjust_pvalues(p: torch.Tensor, method: str | None) -> torch.Tensor:
    """Adjust a family of p-values for multiple testing.

    Args:
        p: [M] float64 p-values (NaN entries are left out of the family and stay NaN).
        method: None, "bh" (Benjamini-Hochberg false discovery rate) or "bonferroni".

    Returns:
        [M] float64 adjusted p-values.
    """
    if method not in ADJUSTMENTS:
        raise ValueError(f"adjust: expected one of {ADJUSTMENTS}, got {method!r}")
    out = p.clone()
    ok = ~p.isnan()
    m = int(ok.sum())
    if method is None or m == 0:
        return out
    q = p[ok]
    if method == "bonferroni":
        out[ok] = torch.clamp(q * m, max=1.0)
        return out
    order = torch.argsort(q, descending=True)
    ranks = torch.arange(m, 0, -1, dtype=torch.float64, device=p.device)
    adj = torch.cummin(q[order] * m / ranks, 0).values.clamp(max=1.0)
    res = torch.empty_like(q)
    res[order] = adj
    out[ok] = res
    return out
