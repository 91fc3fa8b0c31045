"""Exact AUROC of every neuron against every concept, from integer rank sums.

For a neuron with doubled mid-ranks r2 (ties share the mean rank) and a mask of P positives among N
samples, the doubled rank sum S2 = sum of r2 over the mask gives
    AUC = (S2 - P (P + 1)) / (2 P (N - P)),
the Mann-Whitney U statistic over P (N - P) with ties counted 1/2. S2 is an exact integer, and both
numerator and denominator are below 2^53, so one IEEE division yields the correctly rounded rational
value, bit-identical on every backend.
"""

from __future__ import annotations

import torch

from .. import ops
from .concepts import ConceptSet
from .objectives import AUROC
from .regions import Regions
from .sparse import SparseColumns, SparseRanks, activation_columns, as_activation_input
from .validate import check_positive_int

_EXACT = 2**53  # float64 holds every integer up to here
# Dense products win once this share of (concept, region) pairs is set: on 2 AMD EPYC cores the
# crossover lies between 6% and 12% (benchmarks/bench_auroc.py --crossover, RESULTS.md).
DENSE_DENSITY = 0.08
_METHODS = ("auto", "sparse", "dense")


def default_max_memory(device: torch.device) -> int:
    """Working-memory budget in bytes: 2 GiB on the CPU, half the free memory (at most 16 GiB) on a GPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(min(free // 2, 16 << 30))
    return 2 << 30


def choose_method(regions: Regions, method: str = "auto") -> str:
    """'sparse' (CSR gather sums) or 'dense' (exact float64 GEMM) for these concepts."""
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {_METHODS}, got {method!r}")
    if method != "auto":
        return method
    return "dense" if regions.density >= DENSE_DENSITY else "sparse"


def layer_nan_error(x, d0: int) -> ValueError | None:
    """The NaN error of dense activations x [N, Db] (neurons d0 .. d0 + Db - 1 of the layer) naming the
    first bad neuron by its layer-wide number, or None when x has no NaN. Called where the ranking
    kernel refused a batch: the kernel sees only the batch, so its message numbers neurons within it."""
    if isinstance(x, SparseColumns):
        return None  # the sparse kernel is given the layer-wide number of column 0 itself
    bad = torch.isnan(x).sum(0)
    hit = bad.nonzero()
    if not hit.numel():
        return None
    j = int(hit[0])
    return ValueError(
        f"activations: neuron {d0 + j} has {int(bad[j])} NaN value(s) among {x.shape[0]} samples "
        f"({hit.numel()} neuron(s) of neurons {d0}..{d0 + x.shape[1] - 1} have NaN); AUROC is undefined for NaN, "
        "remove or impute them"
    )


def checked_ranking(fn, x, d0: int):
    """fn(x) with a NaN error naming the layer-wide neuron (layer_nan_error) instead of the batch's."""
    try:
        return fn(x)
    except ValueError as e:
        better = layer_nan_error(x, d0) if "NaN" in str(e) else None
        if better is None:
            raise
        raise better from None


def rank_columns(x) -> tuple:
    """(ranks, [D] tie terms) of dense [N, D] activations ([N, D] int32 doubled mid-ranks) or of
    SparseColumns (SparseRanks: the stored entries' ranks and the zeros' rank), for region_rank_sums."""
    if isinstance(x, SparseColumns):
        sr = x.ranks()
        return sr, sr.ties
    return ops.rank_doubled_ties(x)


def region_rank_sums(ranks, regions: Regions, perm: torch.Tensor | None = None) -> torch.Tensor:
    """Doubled rank sums per region.

    Args:
        ranks: [N, D] int32 doubled mid-ranks, or SparseRanks (rank_columns of sparse activations).
        regions: the concepts' regions.
        perm: optional [N] int64 permutation: sample n takes the activations (ranks) of sample perm[n].

    Returns:
        [G, D] int32 (the ranks themselves when every sample is its own region) or int64.
    """
    if isinstance(ranks, SparseRanks):
        return ranks.region_sums(regions.region_of, regions.sizes, perm)
    if regions.identity:
        return ranks if perm is None else ranks[perm]
    indices = regions.sample_indices if perm is None else perm[regions.sample_indices]
    return ops.csr_gather_sum(ranks, regions.sample_indptr, indices)


def ranked_region_sums(x, regions: Regions) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank x [N, D] and sum the doubled ranks per region: ([G, D] int32/int64 sums, [D] tie terms).

    Where regions are much fewer than samples, the sums are accumulated while ranking
    (ops.rank_region_sums) and the [N, D] ranks never exist; otherwise ranks, then region_rank_sums.
    SparseColumns rank their stored entries only (core/sparse.py); the sums are the same integers."""
    if isinstance(x, SparseColumns):
        sr = x.ranks()
        return sr.region_sums(regions.region_of, regions.sizes), sr.ties
    if not regions.identity and 2 * regions.num_regions <= regions.n_samples:
        return ops.rank_region_sums(x, regions.region_of, regions.num_regions)
    ranks, ties = ops.rank_doubled_ties(x)
    return region_rank_sums(ranks, regions), ties


def caches_membership(regions: Regions, member_bytes: int | None) -> bool:
    """Whether the dense product keeps the float64 [K, G] membership (cached on regions): always
    without a limit, else when its 8 K G bytes fit member_bytes."""
    return member_bytes is None or 8 * regions.num_concepts * regions.num_regions <= member_bytes


def concept_rank_sums(
    region_sums: torch.Tensor,
    regions: Regions,
    method: str = "sparse",
    per_sample_max: int | None = None,
    member_bytes: int | None = None,
) -> torch.Tensor:
    """Sums of per-region values over every concept's regions (doubled rank sums of every concept).

    Args:
        region_sums: [G, C] int32/int64 non-negative per-region sums (e.g. of doubled ranks).
        regions: the concepts' regions.
        method: 'sparse' or 'dense' (same integers; only speed differs).
        per_sample_max: bound on one sample's contribution to region_sums (default 2N, the largest
            doubled rank); the dense product splits the regions so float64 stays exact.
        member_bytes: memory the dense product may keep for the float64 [K, G] membership (default: no
            limit, cached on regions). Above it, blocks of regions are converted from the bool membership
            as the product needs them.

    Returns:
        [K, C] int64.
    """
    if method == "sparse":
        return ops.csr_gather_sum(region_sums, regions.concept_indptr, regions.concept_regions)
    k, g = regions.num_concepts, regions.num_regions
    cached = caches_membership(regions, member_bytes)
    block = g if cached else max(64, member_bytes // (8 * max(k, 1)))
    bound = 2 * regions.n_samples if per_sample_max is None else per_sample_max
    out = torch.zeros(k, region_sums.shape[1], dtype=torch.int64, device=region_sums.device)
    for c0, c1 in exact_chunks(regions.sizes, bound):
        for g0 in range(c0, c1, block):
            g1 = min(c1, g0 + block)
            member = regions.membership_f64[:, g0:g1] if cached else regions.membership_bool[:, g0:g1].double()
            out += torch.mm(member, region_sums[g0:g1].double()).round_().long()
    return out


def exact_chunks(sizes: torch.Tensor, per_sample_max: int) -> list[tuple[int, int]]:
    """Split regions into runs whose total (sizes x per_sample_max) stays below 2^53.

    Every partial sum of a float64 product over such a run is a sum of non-negative integers no
    larger than the run's total, hence exact.
    """
    cum = torch.cumsum(sizes, 0).cpu() * per_sample_max
    g, g0, chunks = int(sizes.numel()), 0, []
    if per_sample_max >= _EXACT:
        raise ValueError(f"per-sample values up to {per_sample_max} cannot be summed exactly in float64")
    while g0 < g:
        base = int(cum[g0 - 1]) if g0 else 0
        g1 = min(g, max(g0 + 1, int(torch.searchsorted(cum, base + _EXACT, right=True))))
        chunks.append((g0, g1))
        g0 = g1
    return chunks


def auc_from_rank_sums(s2: torch.Tensor, positives: torch.Tensor, n: int) -> torch.Tensor:
    """Exact AUROC from doubled rank sums.

    Args:
        s2: [...] int64 doubled rank sums of masks.
        positives: int64 mask sizes P, broadcastable with s2 (e.g. [K] for s2 [D, K]).
        n: number of samples N.

    Returns:
        float64 of the broadcast shape, NaN where P == 0 or P == N.

    Example:
        >>> auc_from_rank_sums(torch.tensor([14]), torch.tensor([2]), 4).tolist()  # ranks 3 and 4 of 4
        [1.0]
    """
    return AUROC.score(s2, positives, n)  # the objective's one home: core/objectives.py


def _neuron_batch(n: int, g: int, k: int, d: int, dense: bool, max_memory: int) -> int:
    per_neuron = 4 * n + 8 * g * (2 if dense else 1) + 16 * k + 8 * n  # ranks, region sums, outputs, input copy
    return max(1, min(d, max_memory // max(per_neuron, 1)))


def auroc(activations, labels, *, method: str = "auto", max_memory: int | None = None) -> torch.Tensor:
    """Exact AUROC of every neuron against every concept.

    The AUROC of neuron d for concept k is the probability that a random sample inside concept k
    activates neuron d more than a random sample outside it, ties counting 1/2 (the Mann-Whitney
    definition, as scikit-learn's roc_auc_score computes it). Results are exact: the correctly
    rounded float64 of the rational value, identical on CPU and CUDA.

    Args:
        activations: [N, D] tensor or numpy array (N samples, D neurons), any float dtype, CPU or
            CUDA, any strides. Ranked in its own precision; +-inf are ordinary values; NaN is an error.
            Sparse input (torch COO/CSR/CSC, scipy.sparse, SparseColumns): entries not stored are 0.0;
            the same result as its dense twin.
        labels: ConceptSet, or [N, K] 0/1 matrix (bool/integer/float).
        method: 'auto' (default), 'sparse' or 'dense' product of ranks and concepts.
        max_memory: working-memory budget in bytes; neurons are processed in batches within it.

    Returns:
        [D, K] float64 on the activations' device. NaN for empty and full concepts (no AUROC exists).

    Example:
        >>> import invert_fast as inv
        >>> x = torch.tensor([[0.9], [0.1], [0.4], [0.4]])
        >>> inv.auroc(x, [[1], [0], [1], [0]]).tolist()
        [[0.875]]
    """
    x = as_activation_input(activations)
    concepts = labels if isinstance(labels, ConceptSet) else ConceptSet(labels)
    n, d = x.shape
    if concepts.n_samples != n:
        raise ValueError(
            f"labels: expected {n} samples (rows of activations), got a concept set over {concepts.n_samples} samples"
        )
    ops.check_device(x, "auroc")
    concepts = concepts.to(x.device)
    regions = concepts.regions()
    chosen = choose_method(regions, method)
    if max_memory is None:
        max_memory = default_max_memory(x.device)
    max_memory = check_positive_int(max_memory, "max_memory")
    k = len(concepts)
    out = torch.empty(d, k, dtype=torch.float64, device=x.device)
    if n == 0 or d == 0 or k == 0:
        return out.fill_(float("nan"))
    step = _neuron_batch(n, regions.num_regions, k, d, chosen == "dense", max_memory)
    for d0 in range(0, d, step):
        xb = activation_columns(x, d0, d0 + step)
        region_sums, _ = checked_ranking(lambda v: ranked_region_sums(v, regions), xb, d0)
        s2 = concept_rank_sums(region_sums, regions, chosen, member_bytes=max_memory // 4)  # [K, Dc]
        out[d0 : d0 + step] = auc_from_rank_sums(s2.t(), concepts.counts, n)
    return out
