"""The search objective: one home for how a label's mask is scored, ordered and compared exactly.

The C++ twin is csrc/objective.h (the kernels of both backends score and compare through it, by the
objective's `code`). An objective owns:

- its per-sample statistic, summed over a mask's regions like the size P: for AUROC the doubled mid-rank
  (so a mask's S2 is its doubled rank sum), for IoU and F1 the indicator of the neuron's top samples T
  (so a mask's S is |T & M|); a complement's statistic is the neuron's `total` minus the mask's;
- its exact score, a rational num / den of integers computed as one correctly rounded float64 division:
  AUROC = (S2 - P (P + 1)) / (2 P (N - P)); IoU = S / (|T| + P - S); F1 = 2 S / (|T| + P);
  AUPRC = (N S^2 + P |T| (|T| - S)) / (N P |T|) (scikit-learn's average precision of the binary score);
- its order and ties: higher is better (AUROC in "negative" mode: lower, its ranks mirrored); equal
  floats are compared by exact cross products; then the search's own ties (shorter formula, then text);
- (correlation, cosine) a float64 score of integer sums of the scaled activations, compared by value;
- its bound for exact search and certification (AUROC's knapsack bound over sorted region ranks,
  core/exact.py; none yet for the others) and what p_value_search maximizes (AUROC: the two-sided
  Mann-Whitney significance of a neuron's best label, core/stats.py; the others: their best score).

The top samples T of a neuron (TopSamples): the ceil(alpha N) largest activations, every sample tied
with the last of them included (so |T| >= ceil(alpha N), and T never depends on sample order); or, with
alpha = "support", every sample whose activation is > 0 (the natural T of a sparse latent, whose zeros
are ties: a cutoff among them takes every zero in).

A new objective is a class here (its code, statistic and rational) plus one struct and one case in
csrc/objective.h (docs: the design page).

Example:
    >>> AUROC.score(torch.tensor([14]), torch.tensor([2]), 4).tolist()   # ranks 3 and 4 of 4
    [1.0]
    >>> IOU.score(torch.tensor([3]), torch.tensor([4]), 10, torch.tensor([5])).tolist()  # 3 / (5 + 4 - 3)
    [0.5]
"""

from __future__ import annotations

import math

import torch


class Auroc:
    """INVERT's objective: the exact area under the ROC curve of a neuron's activations for a mask.

    Example:
        >>> Auroc.compare(14, 2, 10, 2, 4)    # AUC 1.0 against 0.5: +1
        1
    """

    name = "auroc"
    code = 0  # csrc/objective.h: Auroc::kCode
    uses_top = False  # its statistic is the ranks, not the top samples

    exact = True  # scores are rationals, compared exactly
    uses_values = False

    @staticmethod
    def total(n: int) -> int:
        """The statistic over all n samples: the doubled ranks sum to n (n + 1)."""
        return n * (n + 1)

    @staticmethod
    def bounds(n: int) -> tuple[int, int]:
        """(largest |statistic| of one sample, largest |statistic| of any mask): a doubled rank is at most 2N,
        a mask's sum at most N (N + 1). Sums pack with sizes, and float64 products stay exact, by these."""
        return 2 * n, n * (n + 1)

    @staticmethod
    def rational(s2, p, n, total=None):
        """(numerator 2U = S2 - P (P + 1), denominator 2 P (N - P)) of the exact AUC, for tensors or ints."""
        return s2 - p * (p + 1), 2 * p * (n - p)

    @staticmethod
    def score(s2: torch.Tensor, positives: torch.Tensor, n: int, total=None) -> torch.Tensor:
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
    def compare(sa: int, pa: int, sb: int, pb: int, n: int, total=None) -> int:
        """-1, 0 or +1 as mask a's AUC is below, equal to or above mask b's, exactly (Python integers)."""
        return _compare(Auroc.rational(sa, pa, n), Auroc.rational(sb, pb, n))


class _TopOverlap:
    """Objectives of the overlap of a mask M with the neuron's top samples T, from S = |T & M|, P = |M|
    and total = |T| (integers: exact)."""

    uses_top = True
    uses_values = False
    exact = True
    # AUROC's bounds (T's indicator, at most 1 per sample, is well within them): the search packs and
    # splits its products as it does for AUROC.
    bounds = staticmethod(Auroc.bounds)

    @classmethod
    def score(cls, s: torch.Tensor, p: torch.Tensor, n: int, total) -> torch.Tensor:
        """float64 exact scores of masks from S, P and the neurons' |T| (broadcast); defined for every size
        (an empty union or sum scores 0, as Network Dissection's IoU)."""
        p = torch.as_tensor(p, device=s.device)
        t = torch.as_tensor(total, device=s.device)
        num, den = cls.rational(s, p, n, t)
        return num.double() / den.double()

    @classmethod
    def compare(cls, sa: int, pa: int, sb: int, pb: int, n: int, total: int) -> int:
        """-1, 0 or +1 as mask a scores below, equal to or above mask b, exactly (Python integers)."""
        return _compare(cls.rational(sa, pa, n, total), cls.rational(sb, pb, n, total))


class Iou(_TopOverlap):
    """Intersection over union of the mask with T: |T & M| / |T | M| (Network Dissection's IoU)."""

    name = "iou"
    code = 1  # csrc/objective.h: Iou::kCode

    @staticmethod
    def rational(s, p, n, total):
        return s, _nonzero(total + p - s)


class F1(_TopOverlap):
    """F1 (Dice) of the mask against T: 2 |T & M| / (|T| + |M|)."""

    name = "f1"
    code = 2  # csrc/objective.h: F1::kCode

    @staticmethod
    def rational(s, p, n, total):
        return 2 * s, _nonzero(total + p)


class Auprc(_TopOverlap):
    """Average precision of the binary score M against T, as scikit-learn's average_precision_score(T, M):
    P R + (1 - R) |T| / N = (N S^2 + P |T| (|T| - S)) / (N P |T|), 0 where T or M is empty. Its numerator
    and denominator reach 2 N^3: searches need N^3 < 2^62 (AUPRC_MAX_N), and the kernels compare its
    near-equal floats exactly (csrc/objective.h)."""

    name = "auprc"
    code = 3  # csrc/objective.h: Auprc::kCode

    @staticmethod
    def rational(s, p, n, total):
        t = total
        num, den = n * s * s + p * t * (t - s), n * p * t
        if isinstance(den, torch.Tensor):
            empty = den == 0
            return torch.where(empty, 0, num), torch.where(empty, 1, den)
        return (0, 1) if den == 0 else (num, den)


AUPRC_MAX_N = 1_664_510  # the largest N with N^3 < 2^62: AUPRC's rational stays within int64

VALUE_BITS = 52  # N max|q| <= 2^52: every sum of the scaled activations q is exact in int64 and in float64


class _Values:
    """Objectives of the activations' values themselves: their statistic is q, the neuron's activations
    scaled by a power of two 2^e and rounded to integers (value_weights), with e the largest that keeps
    N max|q| <= 2^52, so every mask's sum S and the total are exact integers in int64 and in the float64
    products; a mask's score is one float64 formula of (S, P, N, total), each operation rounded once in the
    order written, as csrc/objective.h computes it on both backends (not a rational: compared by value,
    equal values tie). The score is proportional to the metric of q with a positive per-neuron factor, so it
    orders a neuron's masks as the metric does; the label's reported metric is computed from the
    activations themselves (core/metrics.py).

    Error of the order: |q - 2^e a| <= 1/2 per sample, 2^e max|a| > 2^50 / N, so the metric of q differs
    from that of a by at most about N max|a| / (2^50 sigma) (correlation; sigma the activations' standard
    deviation) or N max|a| / (2^50 |a|) (cosine): below 10^-7 for N = 10^6 and max|a| / sigma <= 10^2,
    so only masks whose metrics agree to that many digits can be ordered otherwise than by the metric of a.
    The float score itself is within a few ulps of (N |S| + P |total|) / sqrt(P (N - P)) of the exact
    formula (correlation's cancellation): in units of r, about 2^-51 sqrt(N / (N - P)) |a| / |a - mean a|
    (tests/test_objectives.py checks 10^-12).
    """

    uses_top = False
    uses_values = True
    exact = False

    @staticmethod
    def bounds(n: int) -> tuple[int, int]:
        """(largest |q| of one sample, largest |sum| of a mask): 2^52 / N rounded up and 2^52 + N (never
        packed with sizes: the float64 products have no room left)."""
        return (1 << VALUE_BITS) // n + 1, (1 << VALUE_BITS) + n

    @classmethod
    def compare(cls, sa: int, pa: int, sb: int, pb: int, n: int, total: int) -> int:
        """-1, 0 or +1 as mask a's score is below, equal to or above mask b's (the float64 scores)."""
        a = float(cls.score(torch.tensor([sa]), torch.tensor([pa]), n, torch.tensor([total]))[0])
        b = float(cls.score(torch.tensor([sb]), torch.tensor([pb]), n, torch.tensor([total]))[0])
        return (a > b) - (a < b)


class Correlation(_Values):
    """Pearson's r of the activations and the 0/1 mask; searched by (N S - P total) / sqrt(P (N - P)) of
    the scaled activations q (= r times the neuron's constant sqrt(N sum q^2 - total^2)); 0 for a constant
    mask."""

    name = "correlation"
    code = 4  # csrc/objective.h: Correlation::kCode

    @staticmethod
    def score(s: torch.Tensor, p, n: int, total) -> torch.Tensor:
        """float64 scores of masks from S (sum of q), P and the neurons' totals (broadcast), rounded as the
        kernels round them (csrc/objective.h)."""
        p = torch.as_tensor(p, device=s.device)
        t = torch.as_tensor(total, device=s.device)
        inside = (p > 0) & (p < n)
        num = float(n) * s.double() - p.double() * t.double()  # two rounded products, one rounded difference
        den = (p * (n - p)).clamp(min=1).double().sqrt()  # p (N - p) < 2^53: exact
        return torch.where(inside, num / den, 0.0)


class Cosine(_Values):
    """Cosine similarity of the activations and the 0/1 mask, sum over M of a / (|a| sqrt|M|); searched by
    S / sqrt(P) of the scaled activations q (= the cosine times |q|); 0 for an empty mask."""

    name = "cosine"
    code = 5  # csrc/objective.h: Cosine::kCode

    @staticmethod
    def score(s: torch.Tensor, p, n: int, total=None) -> torch.Tensor:
        """float64 scores of masks from S (sum of q) and P (broadcast), rounded as the kernels round them."""
        p = torch.as_tensor(p, device=s.device)
        return torch.where(p > 0, s.double() / p.clamp(min=1).double().sqrt(), 0.0)


def _nonzero(den):
    """A denominator with 0 (an empty union: the numerator is 0 too) made 1, so the score is 0."""
    if isinstance(den, torch.Tensor):
        return den.clamp(min=1)
    return max(den, 1)


def _compare(a, b) -> int:
    (na, da), (nb, db) = a, b
    lhs, rhs = na * db, nb * da
    return (lhs > rhs) - (lhs < rhs)


AUROC, IOU = Auroc, Iou
OBJECTIVES = {o.name: o for o in (Auroc, Iou, F1, Auprc, Correlation, Cosine)}


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


def check_alpha(alpha, name: str = "alpha"):
    """alpha as the top samples' share, a float in (0, 1], or "support"; a one-line error otherwise."""
    if isinstance(alpha, str):
        if alpha == "support":
            return alpha
        raise ValueError(f'{name}: expected a share in (0, 1] or "support", got {alpha!r}')
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < float(alpha) <= 1:
        raise ValueError(f'{name}: expected a share in (0, 1] or "support", got {alpha!r}')
    return float(alpha)


def top_count(alpha: float, n: int) -> int:
    """ceil(alpha N), at least 1: how many of the largest activations T holds before ties (alpha N as one
    float64 product, so 0.01 * 1000 is 10)."""
    return min(n, max(1, math.ceil(alpha * n)))


def top_samples(x: torch.Tensor, alpha) -> torch.Tensor:
    """[N, D] bool: each neuron's top samples T in dense activations x [N, D] (see the module docstring).

    Example:
        >>> top_samples(torch.tensor([[3.0], [1.0], [3.0], [0.0]]), 0.25).flatten().tolist()   # tie kept
        [True, False, True, False]
    """
    if alpha == "support":
        return x > 0
    v = x if x.dtype in (torch.float32, torch.float64) else x.float()  # f16 / bf16 -> f32: exact, same order
    return v >= top_cut(v, top_count(alpha, x.shape[0])).unsqueeze(0)


def top_cut(x: torch.Tensor, m: int) -> torch.Tensor:
    """[D]: the m-th largest value of each column of x [N, D] float32/float64 (ops.top_values: a selection,
    not a sort; 2x faster than torch.topk along the samples on 2 CPU cores)."""
    from .. import ops

    values, _ = ops.top_values(x.unsqueeze(2).unsqueeze(3), x.new_empty(x.shape[1], 0), m)
    return values[:, m - 1]


def top_weights(x, alpha):
    """The per-sample statistic of the top-overlap objectives for a batch of neurons: T's indicator.

    Args:
        x: dense [N, D] activations, or SparseColumns (entries not stored are 0.0).
        alpha: the top share in (0, 1], or "support".

    Returns:
        (weights, totals): a SparseRanks whose entry "ranks" are 1 for the samples in T (dense input: T's
        samples are its entries) and whose zero_ranks [D] say whether a neuron's unstored zeros are in T,
        so region sums are computed as for ranks, permutations included; totals [D] int64 |T|.
    """
    from .sparse import SparseColumns, SparseRanks

    if not isinstance(x, SparseColumns):
        t = top_samples(x, alpha)
        cols, rows = t.t().nonzero().unbind(1)  # by neuron, then sample
        d = x.shape[1]
        totals = torch.bincount(cols, minlength=d)
        indptr = torch.zeros(d + 1, dtype=torch.int64, device=x.device)
        indptr[1:] = torch.cumsum(totals, 0)
        entries = SparseColumns(indptr, rows, torch.ones(rows.numel(), device=x.device), x.shape)
        ones = torch.ones(rows.numel(), dtype=torch.int32, device=x.device)
        return SparseRanks(entries, ones, torch.zeros(d, dtype=torch.int64, device=x.device), None), totals
    n, d = x.shape
    vals = x.values.double()
    col = x.column_of_entries()
    stored = x.indptr.diff()
    if alpha == "support":
        hit, zero_in = vals > 0, torch.zeros(d, dtype=torch.bool, device=vals.device)
    else:
        m = top_count(alpha, n)
        # Entries of each column in descending value: positives, stored zeros, negatives.
        order = torch.argsort(-vals, stable=True)
        order = order[torch.argsort(col[order], stable=True)]
        ranked = vals[order]
        pos = torch.zeros(d, dtype=torch.int64, device=vals.device).index_add_(0, col, (vals > 0).long())
        implicit = n - stored
        zeros = implicit + torch.zeros(d, dtype=torch.int64, device=vals.device).index_add_(0, col, (vals == 0).long())
        # The m-th largest of all N values: a stored positive, a zero, or a stored negative (past the
        # implicit zeros, which are not in the stored list).
        index = torch.where(m <= pos, m - 1, m - 1 - implicit)
        cut = torch.zeros(d, dtype=torch.float64, device=vals.device)
        neg = m > pos + zeros
        use = (m <= pos) | neg
        if bool(use.any()):
            at = (x.indptr[:-1] + index.clamp(min=0))[use]
            cut[use] = ranked[at]
        hit = vals >= cut[col]
        zero_in = cut <= 0
    totals = torch.zeros(d, dtype=torch.int64, device=vals.device).index_add_(0, col, hit.long())
    totals += torch.where(zero_in, n - stored, 0)  # the implicit zeros, when T takes the zeros in
    w = SparseRanks(x, hit.to(torch.int32), zero_in.long(), None)
    return w, totals


def value_weights(x):
    """The per-sample statistic of the value objectives (correlation, cosine) for a batch of neurons: the
    activations scaled by a power of two and rounded to integers, q = round(a 2^e) (half to even), with
    per neuron the largest e such that N max|a| 2^e < 2^52 (so N max|q| <= 2^52 + N/2: every sum exact).

    Args:
        x: dense [N, D] activations, or SparseColumns (entries not stored are 0.0, so their q is 0).

    Returns:
        (weights, totals): dense input, q [N, D] int64; sparse, a SparseRanks whose entry "ranks" are the
        stored entries' q (zeros 0), so region sums are computed as for ranks, permutations included;
        totals [D] int64 sum of q.

    Example:
        >>> q, t = value_weights(torch.tensor([[1.0], [-0.5], [0.0], [2.0]]))
        >>> (q[:, 0] / q[3, 0]).tolist(), int(t[0]) == int(q.sum())
        ([0.5, -0.25, 0.0, 1.0], True)
    """
    from .sparse import SparseColumns, SparseRanks

    n, d = x.shape
    sparse = isinstance(x, SparseColumns)
    vals = x.values if sparse else x
    # float32 / float64 as they are (f16 / bf16 -> f32: exact). A power-of-two scale changes no bit of the
    # mantissa while the product stays normal, and products below float32's normal range round to 0
    # either way, so the scaled values, and their rounding to integers, are those of float64.
    v = vals if vals.dtype in (torch.float32, torch.float64) else vals.float()
    if sparse:
        col = x.column_of_entries()
        peak = torch.zeros(d, dtype=v.dtype, device=v.device).scatter_reduce_(0, col, v.abs(), "amax")
    elif n:
        peak = torch.maximum(v.amax(0), -v.amin(0))  # two reductions: 9x faster than aminmax here
    else:
        peak = torch.zeros(d, dtype=v.dtype, device=v.device)
    peak = peak.double()
    # peak = f 2^k with f in [0.5, 1): peak < 2^k, so N peak 2^e < 2^(k + ceil(log2 N) + e) <= 2^52.
    _, k = torch.frexp(peak)
    e = (VALUE_BITS - (n - 1).bit_length() - k.long()).clamp(-1074, 1023)
    e = torch.where(peak > 0, e, 0)
    if v.dtype == torch.float32 and bool(((e < -126) | (e > 127)).any()):
        v = v.double()  # a scale outside float32's normal range
    scale = torch.ldexp(torch.ones_like(peak), e).to(v.dtype)  # 2^e exactly
    if sparse:
        q = torch.round(v * scale[col]).long()
        totals = torch.zeros(d, dtype=torch.int64, device=v.device).index_add_(0, col, q)
        return SparseRanks(x, q, torch.zeros(d, dtype=torch.int64, device=v.device), None), totals
    q = torch.mul(v, scale).round_().long()
    return q, q.sum(0)
