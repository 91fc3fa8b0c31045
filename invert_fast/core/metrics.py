"""The five metrics NeuronEval (Oikarinen et al., ICML 2025) finds pass both its missing- and extra-labels
tests, on every label whatever the search's objective: IoU, F1, AUPRC, correlation and cosine.

One function per metric (METRICS: name -> function), each of a LabelStats, with these definitions (T the
neuron's top samples, core/objectives.top_samples: the ceil(alpha N) largest activations, every sample
tied with the last of them included, or the activations > 0 for alpha "support"; M the label's mask;
a the activations):

- iou = |T & M| / |T | M|;  f1 = 2 |T & M| / (|T| + |M|);
- auprc = scikit-learn's average_precision_score(T, M) for the binary score M:
  P R + (1 - R) |T| / N with P = |T & M| / |M|, R = |T & M| / |T|;
- correlation = Pearson's r of a and the 0/1 mask: sum over M of (a - mean(a)) / sqrt(SS |M| (N - |M|) / N),
  with SS = sum of (a - mean(a))^2 (deviations summed, not S_M - |M| mean: no cancellation for an offset
  neuron);
- cosine = S_M / (||a|| sqrt(|M|)).

IoU, F1 and AUPRC are rationals of integer counts: exact (the correctly rounded float64 of the rational).
Correlation and cosine come from float64 sums of the activations, accumulated in sample order on the CPU
(so identical on every device and batch, and for sparse input and its dense twin: SS sums the nonzero
activations' squared deviations in sample order and adds the zeros' as one product): each sum of n terms is within gamma_(n-1) * sum |a_i| of the
exact one (gamma_k = k u / (1 - k u), u = 2^-53); for N = 10^6 samples the relative error of r is below
about 1e-9 (tested against reference.py's Fractions). Undefined values are NaN: correlation of a constant
neuron, cosine of an all-zero neuron, both where an activation is +-inf, AUPRC with T empty (alpha
"support" of a neuron never > 0).

Example:
    >>> st = label_stats(acts, words, concepts.regions(), 0.01)    # words: [D, B, W] packed region masks
    >>> {name: fn(st)[0, 0].item() for name, fn in METRICS.items()}
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from .. import ops
from .bits import unpack_bits
from .objectives import F1, Auprc, Iou, top_count, top_cut, top_weights
from .regions import Regions
from .sparse import SparseColumns


@dataclass
class LabelStats:
    """Sums behind the metrics of B labels of each of D neurons (CPU tensors).

    Attributes:
        n: samples N; s: [D, B] int64 |T & M|; p: [D, B] int64 |M|; t: [D] int64 |T|;
        s_a: [D, B] float64 sum of the activations over M; s_dev: [D, B] float64 sum of their deviations
        from the neuron's mean over M (no cancellation for an offset neuron); sum_a, ss, sum_a2: [D] float64 sum of a, sum of
        (a - mean)^2 and sum of a^2 over all samples.
    """

    n: int
    s: torch.Tensor
    p: torch.Tensor
    t: torch.Tensor
    s_a: torch.Tensor
    s_dev: torch.Tensor
    sum_a: torch.Tensor
    ss: torch.Tensor
    sum_a2: torch.Tensor


def iou(st: LabelStats) -> torch.Tensor:
    """|T & M| / |T | M| (0 for an empty union): the IoU objective's score (core/objectives.py)."""
    return Iou.score(st.s, st.p, st.n, st.t.unsqueeze(1))


def f1(st: LabelStats) -> torch.Tensor:
    """2 |T & M| / (|T| + |M|) (0 when both are empty): the F1 objective's score."""
    return F1.score(st.s, st.p, st.n, st.t.unsqueeze(1))


def auprc(st: LabelStats) -> torch.Tensor:
    """The AUPRC objective's rational, in Python integers and correctly rounded (its int64 form is limited
    to AUPRC_MAX_N samples; a column has no such limit); NaN where T or M is empty."""
    n, t = st.n, st.t.tolist()
    rows = [
        [float(Fraction(*Auprc.rational(sv, pv, n, t[d]))) if t[d] > 0 and pv > 0 else float("nan")
         for sv, pv in zip(row_s, row_p, strict=True)]
        for d, (row_s, row_p) in enumerate(zip(st.s.tolist(), st.p.tolist(), strict=True))
    ]  # fmt: skip
    return torch.tensor(rows, dtype=torch.float64).reshape(st.s.shape)


def correlation(st: LabelStats) -> torch.Tensor:
    """Pearson's r of the activations and the 0/1 mask (NaN for a constant neuron or an empty/full mask)."""
    n, p = st.n, st.p.double()
    den = torch.sqrt(st.ss.unsqueeze(1) * p * (n - p) / n)
    return torch.where(den > 0, st.s_dev / den, float("nan"))


def cosine(st: LabelStats) -> torch.Tensor:
    """Cosine similarity of the activations and the 0/1 mask (NaN for an all-zero neuron or empty mask)."""
    den = torch.sqrt(st.sum_a2).unsqueeze(1) * torch.sqrt(st.p.double())
    return torch.where(den > 0, st.s_a / den, float("nan"))


METRICS = {"iou": iou, "f1": f1, "auprc": auprc, "correlation": correlation, "cosine": cosine}


@dataclass
class RegionSums:
    """The per-region sums behind every label's metrics, computed once per neuron batch (CPU tensors).

    Attributes:
        a: [G, D] float64 sum of the activations per region; dev: [G, D] float64 sum of their deviations
        from the neuron's computed mean; t: [G, D] int64 samples of the neuron's top samples T per region
        (exact: the IoU, F1 and AUPRC search's own statistic); totals: [D] int64 |T|; sum_a, sq, ss: [D]
        float64 sum of a, of a^2 and of (a - mean)^2.
    """

    a: torch.Tensor
    dev: torch.Tensor
    t: torch.Tensor
    totals: torch.Tensor
    sum_a: torch.Tensor
    sq: torch.Tensor
    ss: torch.Tensor


def region_sums(x, regions: Regions, alpha, top=None) -> RegionSums:
    """The RegionSums of activations x for T at alpha (label_stats' first half; the search reuses T's
    counts for the top-overlap objectives).

    Args:
        x: [N, D] dense activations (summed by ops.region_moments on their device, in sample order) or
            SparseColumns (summed on the CPU by index_add_ in the same order: identical results).
        regions: the concept set's regions (region_of, sizes).
        alpha: T's share, or "support" (core/objectives.top_samples).
        top: for SparseColumns, (weights, totals) of core/objectives.top_weights(x, alpha) when computed.
    """
    n, d = x.shape
    g = regions.num_regions
    sizes = regions.sizes.cpu()
    if isinstance(x, SparseColumns):
        weights, totals = top if top is not None else top_weights(x, alpha)
        t_regions = weights.region_sums(regions.region_of, regions.sizes).cpu().long()  # [G, D]
        region_of = regions.region_of.cpu()
        vals = x.values.cpu().double()
        col = x.column_of_entries().cpu()
        nonzero = vals != 0
        vals, col, rows = vals[nonzero], col[nonzero], x.indices.cpu()[nonzero]
        target = region_of[rows] * d + col
        # The same terms in the same order as ops.region_moments (csrc/region_moments.h): index_add_ on the
        # CPU adds in index order, and the entries of a neuron are in sample order.
        a_regions = torch.zeros(g * d, dtype=torch.float64).index_add_(0, target, vals).view(g, d)
        sum_a = _column_sums(a_regions, torch.zeros(g, dtype=torch.int64))
        sq = torch.zeros(d, dtype=torch.float64).index_add_(0, col, vals * vals)
        mean = sum_a / n
        dev = vals - mean[col]
        ss = torch.zeros(d, dtype=torch.float64).index_add_(0, col, dev * dev)
        zeros = n - torch.bincount(col, minlength=d)
        ss = ss + zeros.double() * mean * mean
        nz_regions = torch.zeros(g * d, dtype=torch.int64).index_add_(0, target, torch.ones_like(col)).view(g, d)
        dev_regions = torch.zeros(g * d, dtype=torch.float64).index_add_(0, target, dev).view(g, d)
        dev_regions = dev_regions - (sizes.unsqueeze(1) - nz_regions).double() * mean
        totals = totals.cpu()
    else:
        if alpha == "support":
            cut, strict = torch.zeros(d, dtype=torch.float64, device=x.device), True
        else:
            v = x if x.dtype in (torch.float32, torch.float64) else x.float()
            cut, strict = top_cut(v, top_count(alpha, n)).double(), False
        a_regions, dev_regions, t_regions, moments = (
            t.cpu() for t in ops.region_moments(x, regions.region_of, g, cut, strict)
        )
        sum_a, sq, ss = moments.unbind(0)
        totals = t_regions.sum(0)
    return RegionSums(a_regions, dev_regions, t_regions, totals, sum_a, sq, ss)


def label_stats(
    x, words: torch.Tensor, regions: Regions, alpha, top=None, max_memory: int = 1 << 28, sums: RegionSums | None = None
) -> LabelStats:
    """The sums of LabelStats for labels given as packed region masks.

    Args:
        x: [N, D] dense activations or SparseColumns (region_sums).
        words: [D, B, ceil(G / 64)] int64 packed region masks of the labels (padding 0).
        regions: the concept set's regions (region_of, sizes).
        alpha: T's share, or "support" (core/objectives.top_samples).
        top: for SparseColumns, (weights, totals) of core/objectives.top_weights(x, alpha) when computed.
        max_memory: bytes of unpacked masks held at a time (neurons run in blocks).
        sums: region_sums(x, regions, alpha, top) when already computed.

    Returns:
        LabelStats on the CPU.
    """
    n, d = x.shape
    g, b = regions.num_regions, words.shape[1]
    sizes = regions.sizes.cpu()
    rs = sums if sums is not None else region_sums(x, regions, alpha, top)
    a_regions, dev_regions, t_regions, totals = rs.a, rs.dev, rs.t, rs.totals
    sum_a, sq, ss = rs.sum_a, rs.sq, rs.ss
    # The computed mean is off by c = sum(a - mean) / N; correct both sums for it (the corrected two-pass
    # algorithm): the mean's rounding would otherwise dominate for a neuron far from zero.
    c = _column_sums(dev_regions, torch.zeros(g, dtype=torch.int64)) / n
    ss = (ss - n * c * c).clamp(min=0)
    words = words.cpu()
    s, p = (torch.empty(d, b, dtype=torch.int64) for _ in range(2))
    s_a, s_dev = (torch.empty(d, b, dtype=torch.float64) for _ in range(2))
    for d0, d1 in _blocks(d, 33 * b * g, max_memory):
        mask = unpack_bits(words[d0:d1], g)  # [d, B, G]
        m = mask.long()
        s[d0:d1] = torch.einsum("dbg,gd->db", m, t_regions[:, d0:d1])  # integers: exact in any order
        p[d0:d1] = (m * sizes).sum(-1)
        s_a[d0:d1] = _masked_float_sums(mask, a_regions[:, d0:d1])
        s_dev[d0:d1] = _masked_float_sums(mask, dev_regions[:, d0:d1])
    s_dev -= p.double() * c.unsqueeze(1)
    return LabelStats(n, s, p, totals, s_a, s_dev, sum_a, ss, sq)


def _blocks(d: int, per_neuron: int, max_memory: int):
    step = max(1, min(d, max_memory // max(per_neuron, 1)))
    return [(d0, min(d, d0 + step)) for d0 in range(0, d, step)]


def _column_sums(a: torch.Tensor, zeros: torch.Tensor) -> torch.Tensor:
    """[D] float64 sums of a [N, D] in sample order (index_add_ on the CPU)."""
    return torch.zeros(1, a.shape[1], dtype=torch.float64).index_add_(0, zeros, a)[0]


def _masked_float_sums(mask: torch.Tensor, a_regions: torch.Tensor) -> torch.Tensor:
    """[D, B] float64 sums of a_regions [G, D] over masks [D, B, G], region after region in order (a fixed
    order, unlike a matrix product's)."""
    d, b, g = mask.shape
    picked = torch.where(mask, a_regions.t().unsqueeze(1), 0.0).reshape(d * b, g)
    return _column_sums(picked.t(), torch.zeros(g, dtype=torch.int64)).view(d, b)
