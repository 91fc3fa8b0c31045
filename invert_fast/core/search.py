"""INVERT's beam search for every neuron at once, in region space.

Every formula is a union of regions (groups of samples sharing a concept vector), so beams are
kept as region masks and every AUROC of the search follows from per-region rank sums. One step for
a batch of neurons is a single product: X[d, b, c] = sum of (rank sum, count) of beam b AND concept c
over regions. Inclusion-exclusion then gives all four candidates:
    b & c = X,  b & ~c = b - X,  b | c = b + c - X,  b | ~c = total - c + X.
Counts ride along with rank sums in one integer (sum * 2^s + count), so one product yields both.

Beam formulas live as tensors: their region masks, sums and extension histories (the first atom,
then op * 2K + atom per join; csrc/formula_texts.h). A fused kernel scores every candidate and keeps
those reaching each neuron's k-th best score (beam_step_select); one exact selection picks the B
winners among them (select_labels: exact AUC, length, canonical text, one per mask). Formula objects
are built only for the final labels.
"""

from __future__ import annotations

import contextlib
import gc
import warnings
from collections.abc import Callable

import numpy as np
import torch

from .. import ops
from .auroc import (
    auc_from_rank_sums,
    checked_ranking,
    default_max_memory,
    rank_columns,
    ranked_region_sums,
    region_rank_sums,
)
from .bits import unpack_bits
from .concepts import ConceptSet
from .exact import check_exact, exact_search
from .metrics import METRICS, label_stats
from .metrics import region_sums as metric_sums
from .objectives import AUPRC_MAX_N, AUROC, top_weights, value_weights
from .order import exact_subrank, float_key
from .params import SearchParams
from .results import Explanation, Explanations, adjust_explanations
from .space import (
    INVERT,
    NEG_INF,
    Beams,
    Grammar,
    RegionSpace,
    atom_chooser,
    atom_gather,
    extend,
    select_winners,
    sign_int,
)
from .sparse import SparseColumns, activation_columns, as_activation_input
from .stats import ADJUSTMENTS, mannwhitney_pvalues
from .validate import as_device, check_positive_int, to_tensor


def explain(
    activations,
    concepts,
    L: int = 3,
    B: int = 10,
    limit_search: int | None = None,
    min_fraction: float = 0.0,
    max_fraction: float = 0.5,
    mode: str = "positive",
    device=None,
    *,
    distinct: bool = True,
    permutations: int = 0,
    seed: int = 0,
    groups=None,
    search: str = "beam",
    certify: bool = False,
    objective: str = "auroc",
    alpha: float | str = 0.005,
    holdout: float = 0.0,
    metrics: bool = True,
    max_work: int | None = None,
    alternative: str = "two-sided",
    adjust: str | None = None,
    method: str = "auto",
    max_memory: int | None = None,
    layer: str = "",
    progress: Callable[[int, int], None] | None = None,
    neuron_offset: int = 0,
) -> Explanations:
    """Label every neuron with its best compositional formulas (INVERT), exactly.

    Semantics are those of INVERT 1.1 (lapalap/invert) with its defects fixed: atoms are every
    concept c and ~c; the length-1 beam holds the B admissible atoms of best AUC; each further step
    joins every beam formula b with every extension atom a as b & a and b | a, drops candidates that
    are not admissible or leave b's mask unchanged, keeps equivalent formulas once, and takes the best
    B of the old beam plus the candidates. Order: AUC (descending in "positive" mode, ascending in
    "negative"), then shorter length, then formula text; every comparison is exact (rationals from
    integer rank sums), never float noise. With `distinct` (the default), formulas with equal sample
    masks count once everywhere (beams and results): the shortest, then first in text order, is kept.

    Args:
        activations: [N, D] tensor or numpy array (N samples, D neurons), a sparse matrix (torch COO,
            CSR or CSC, scipy.sparse: entries not stored are 0.0, results identical to the dense twin's),
            or an on-disk store (invert_fast.NeuronStore: .npy, HDF5, safetensors, .pt, sparse .npz, a
            delphi latent cache) read in neuron batches; NaN is an error.
        concepts: ConceptSet, or [N, K] 0/1 matrix (names c0, c1, ...).
        L: longest formula (atom occurrences), >= 1.
        B: beam size and number of labels per neuron, >= 1.
        limit_search: extension atoms per neuron: the limit_search atoms of largest differentiability
            2|AUC - 0.5| among all 2K atoms (ties: AUC in the mode's direction, then text); None for all.
        min_fraction, max_fraction: admissible share of samples in a formula's mask (also 0 < share < 1).
            min_fraction 0 (INVERT's default) lets masks of a few samples win; set it to the smallest
            share a label should cover (README, "Choosing min_fraction"; benchmarks/bench_recovery.py).
        mode: "positive" (formulas the neuron activates for) or "negative".
        device: where to compute (default: the activations' device); results are identical on all.
        distinct: one formula per distinct mask (default); False keeps formulas with equal masks but
            different text apart, as INVERT 1.1 does.
        permutations: P > 0 adds p_value_search, a permutation test of the whole search (max-T over
            each neuron's labels, see README); 0 leaves it NaN.
        seed: seed of the permutations (permutation i is the i-th torch.randperm of a CPU generator).
        groups: [N] ints: permute whole groups of samples (e.g. the sentence of each token) instead of
            single samples; groups of equal size are exchanged. A store with sequences (a delphi cache)
            defaults to its sequence index.
        search: "beam" (INVERT's beam search) or "exact": the B best distinct masks among every formula of
            at most L <= 3 atoms (limit_search None, distinct True), see core/exact.py.
        certify: add Explanation.bound (the exact best score of the objective -- AUROC, IoU or F1 -- of any
            admissible formula of <= L atoms, L <= 3) and certified (bound equals the rank-0 label's score)
            for every neuron; costs an exact search.
        objective: what the search maximizes (core/objectives.py): "auroc" (INVERT's AUC, the default),
            "iou", "f1" or "auprc" (the label's overlap with the neuron's top samples T, exact rationals of
            counts; auprc for N <= 1,664,510), "correlation" or "cosine" (of the activations and the 0/1
            mask, searched on the activations scaled to exact integers; docs: the statistics page). All but
            auroc: positive mode, no limit_search, search="exact" for L <= 2. Every label still reports its
            AUC and p-values; with permutations, p_value_search tests the neuron's best score of the
            objective.
        alpha: T: the ceil(alpha N) largest activations, samples tied with the last included; or
            "support": the activations > 0 (a sparse latent's natural T). The overlap objectives search by
            it, and every label's iou, f1, auprc columns measure against it (core/metrics.py).
        holdout: share of the samples held out of the search (0: none): the search sees the rest, and every
            label also gets its AUC and five metrics on the held-out samples (auc_heldout, iou_heldout, ...;
            T their own top share). Whole groups are held out with `groups` (a store with sequences: its
            sequences); which samples is seeded by `seed` (holdout_split) and recorded in the parameters.
        metrics: fill every label's iou, f1, auprc, correlation and cosine (core/metrics.py; about 0.9 ms per
            neuron at N = 50,000 on 2 CPU cores, benchmarks/RESULTS.md); False leaves them NaN.
        max_work: candidate evaluations the exact search (or certify) may do; None: no limit. Past it, a
            ValueError naming the limit.
        alternative: Mann-Whitney alternative for p-values: "two-sided", "greater", "less".
        adjust: None, "bh" or "bonferroni": adjust p-values across neurons (per rank).
        method: "auto", "sparse" or "dense" rank-sum products.
        max_memory: working-memory budget in bytes (neurons are batched within it).
        layer: name written into exported tables.
        progress: called as progress(done_neurons, total_neurons) after each batch.
        neuron_offset: the layer-wide number of the activations' first neuron, for error messages
            (explain_to_file passes each chunk's; results are numbered from 0 all the same).

    Returns:
        Explanations: res[d] is neuron d's list of Explanation, best first, at most B.

    Example:
        >>> res = explain(acts, concepts, L=3, B=10)
        >>> e = res[0][0]; print(e.formula, e.auc, e.p_value)
    """
    # An on-disk store (io.store.NeuronStore, or anything with .shape and .read(d0, d1)) is read in neuron
    # batches; everything else is an in-memory [N, D] array.
    store = activations if is_neuron_source(activations) else None
    x = None if store is not None else as_activation_input(activations)
    params = SearchParams(
        L, B, limit_search, min_fraction, max_fraction, mode, alternative, distinct, permutations, seed, search, certify,
        objective, alpha, holdout,
    )  # fmt: skip
    if params.search == "exact":
        check_exact(params)
    if max_work is not None:
        max_work = check_positive_int(max_work, "max_work")
    if not isinstance(metrics, bool | np.bool_):
        raise TypeError(f"metrics: expected True or False, got {type(metrics).__name__} {metrics!r}")
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust: expected one of {ADJUSTMENTS}, got {adjust!r}")
    cs = concepts if isinstance(concepts, ConceptSet) else ConceptSet(concepts)
    if len(cs) == 0:
        raise ValueError("concepts: expected at least one concept to label neurons with, got K = 0")
    n, d_total = store.shape if store is not None else x.shape
    if cs.n_samples != n:
        raise ValueError(f"concepts: expected {n} samples (rows of activations), got a concept set over {cs.n_samples}")
    if n < 2:
        raise ValueError(f"activations: need at least 2 samples to compare inside and outside a mask, got {n}")
    groups = permutation_groups(store, params.permutations or params.holdout, groups)
    split = None
    if params.holdout > 0:  # the search sees the training samples; the labels are scored on the rest too
        held = holdout_split(n, params.holdout, params.seed, groups)
        train_idx, held_idx = (~held).nonzero().flatten(), held.nonzero().flatten()
        if train_idx.numel() < 2 or held_idx.numel() < 2:
            raise ValueError(
                f"holdout: expected at least 2 samples on each side, got {train_idx.numel()} to search and "
                f"{held_idx.numel()} held out (holdout = {params.holdout}, N = {n})"
            )
        split = (train_idx, held_idx, cs.select_samples(held_idx))
        cs = cs.select_samples(train_idx)
        if groups is not None:
            groups = to_tensor(groups, "groups")[train_idx]
    n_all, n = n, cs.n_samples
    if params.objective == "auprc" and n > AUPRC_MAX_N:
        raise ValueError(
            f"objective: 'auprc' searches need at most {AUPRC_MAX_N:,} samples (its exact rational, up to 2 N^3, "
            f"must fit in 64 bits), got N = {n:,}; the auprc column of every label has no such limit"
        )
    plan = PermutationPlan(n, params.permutations, params.seed, groups)
    dev = as_device(device) if device is not None else (x.device if x is not None else torch.device("cpu"))
    ops.check_device(torch.empty(0, device=dev), "explain")
    cs = cs.to(dev)
    if split is not None:
        split = (split[0], split[1], split[2].to(dev))
    if max_memory is None:
        max_memory = default_max_memory(dev)
    max_memory = check_positive_int(max_memory, "max_memory")
    space = RegionSpace(cs, method, max_memory)
    exported = {**params.as_dict(), "adjust": adjust, "method": space.method, "n_samples": n_all, "n_concepts": space.k}
    if split is not None:
        exported["holdout_samples"] = int(split[1].numel())
    if groups is not None:
        exported["groups"] = plan.describe()
    if getattr(store, "model", None):  # a delphi cache's config.json names the model of its latents
        exported["model"] = str(store.model)

    g, k, B = space.regions.num_regions, space.k, params.B
    # Ranks and the batch's copy: [N] per neuron dense; sparse, the stored entries (ranks, rows, values,
    # columns) and the region sums' scatter.
    nnz = getattr(x if x is not None else store, "nnz", None)
    per_rank = 12 * n if nnz is None else 40 * -(-nnz // max(d_total, 1)) + 16 * g
    per_neuron = per_rank + 8 * g + B * g * (1 + 8 + (8 if space.method == "dense" else 0)) + 200 * B * k
    if metrics:  # ops.region_moments' sums, deviations, top counts and nonzero counts per region
        per_neuron += 32 * g
    if params.scorer.uses_values:  # the scaled activations q (int64) and their region sums
        per_neuron += 8 * n + 8 * g
    if split is not None:  # the batch's training and held-out rows, copied apart
        per_neuron += 8 * n_all
    if params.search == "exact" or params.certify:
        # The exact search holds every atom AND every concept ([2K, K], packed or with sizes), the pair
        # sums, the atoms' packed masks, and for L = 3 the kept prefixes' masks and sums.
        per_neuron += (
            8 * (2 * k * k) * (1 if space.packs(params.scorer.bounds(n)) else 2) + 8 * k * k + 2 * k * (g // 8 + 16)
        )
        if params.L == 3:
            per_neuron += (2 * k) ** 2 * (g + 16 * k + 64)
        if per_neuron > max_memory:
            raise ValueError(
                f"max_memory: the exact search needs about {per_neuron:,} bytes per neuron ({2 * k} atoms, {g} regions, "
                f"L = {params.L}), above max_memory = {max_memory:,}"
            )
    # The space's own tensors (memberships, region maps) come out of the same budget.
    if space.fixed_bytes + per_neuron > max_memory:
        size = lambda b: f"{b / 2**20:.1f} MiB" if b >= 2**20 else f"{b:,} bytes"  # noqa: E731
        warnings.warn(
            f"max_memory: the concept set's region structures ({size(space.fixed_bytes)}: {k} concepts over "
            f"{g} regions) and one neuron's search ({size(per_neuron)}) exceed max_memory = {size(max_memory)}; "
            "searching one neuron at a time",
            stacklevel=2,
        )
    step = max(1, min(d_total, 4096, (max_memory - space.fixed_bytes) // per_neuron))
    per_neuron_results: list[list[Explanation]] = []
    for d0 in range(0, d_total, step):
        xb = (
            as_activation_input(store.read(d0, d0 + step))
            if store is not None
            else activation_columns(x, d0, d0 + step)
        )
        xb = xb.to(dev)
        if (
            not isinstance(xb, SparseColumns) and xb.stride(1) != 1
        ):  # a transposed layout is slow to rank (a row per page): one dense copy
            xb = xb.contiguous()
        if split is None:
            per_neuron_results += explain_batch(xb, d0, space, params, plan, max_work, neuron_offset, metrics)
        else:
            train_idx, held_idx, cs_held = split
            found = explain_batch(_rows(xb, train_idx), d0, space, params, plan, max_work, neuron_offset, metrics)
            per_neuron_results += heldout_scores(found, _rows(xb, held_idx), cs_held, params.alpha, neuron_offset + d0)
        if progress is not None:
            progress(min(d_total, d0 + step), d_total)
    if adjust is not None:
        adjust_explanations(per_neuron_results, adjust)
    return Explanations(per_neuron_results, exported, layer, cs.definitions)


def check_groups(groups, n: int) -> torch.Tensor:
    """[N] int64 CPU group ids of `groups`, or a one-line error (not [N], or not integers)."""
    gr = to_tensor(groups, "groups")
    if gr.dim() != 1 or gr.numel() != n:
        raise ValueError(f"groups: expected [N] = [{n}] integer group ids, got shape {tuple(gr.shape)}")
    if gr.is_floating_point() or gr.is_complex() or gr.dtype == torch.bool:
        raise TypeError(f"groups: expected integer group ids, got dtype {gr.dtype}")
    return gr.long().cpu()


def holdout_split(n: int, share: float, seed: int, groups=None) -> torch.Tensor:
    """[N] bool: the samples explain(holdout=share) holds out of the search.

    Without groups: the first round(share N) samples of torch.randperm(N) drawn from a CPU generator seeded
    with seed + 1 (the permutations use seed itself). With groups ([N] ints): whole groups, in the order of
    a torch.randperm over the distinct groups (ascending ids) from the same generator, until at least
    round(share N) samples are held out.

    Example:
        >>> holdout_split(10, 0.3, seed=0).sum().item()
        3
    """
    gen = torch.Generator().manual_seed(seed + 1)
    want = round(share * n)
    held = torch.zeros(n, dtype=torch.bool)
    if groups is None:
        held[torch.randperm(n, generator=gen)[:want]] = True
        return held
    ids, inv, counts = torch.unique(check_groups(groups, n), return_inverse=True, return_counts=True)
    order = torch.randperm(ids.numel(), generator=gen)
    taken = torch.cumsum(counts[order], 0)
    k = int(torch.searchsorted(taken, torch.tensor(want), right=False)) + 1 if want > 0 else 0
    chosen = torch.zeros(ids.numel(), dtype=torch.bool)
    chosen[order[: min(k, ids.numel())]] = True
    return chosen[inv]


def _rows(x, idx: torch.Tensor):
    """The samples idx of dense [N, D] or SparseColumns activations."""
    if isinstance(x, SparseColumns):
        return x.select_rows(idx)
    return x.index_select(0, idx.to(x.device))


def heldout_scores(found: list[list[Explanation]], x_held, cs_held: ConceptSet, alpha, neuron_offset: int = 0):
    """The labels `found` (one list per neuron of x_held's columns) with their AUC and five metrics on the
    held-out samples x_held [Nh, Db] (dense or SparseColumns; T its own top share alpha), the same
    definitions as the search's columns (core/auroc, core/metrics). Every formula is evaluated on the regions
    of cs_held (each region one "sample" of its concept vector), so the float sums run over the same regions
    in the same order whatever the batch of neurons: a label's columns do not depend on its batch."""
    import dataclasses

    from .metrics import label_stats
    from .order import packed_rows

    if not any(found):
        return found
    regions = cs_held.regions()
    g = regions.num_regions
    by_region = ConceptSet.from_bits(packed_rows(regions.membership_bool), g, cs_held.names)
    words_of: dict[str, torch.Tensor] = {}
    db, b = len(found), max(len(r) for r in found)
    words = torch.zeros(db, b, by_region.bits.shape[1], dtype=torch.int64, device=by_region.bits.device)
    for d, labels in enumerate(found):
        for r, e in enumerate(labels):
            key = str(e.formula)
            if key not in words_of:
                words_of[key] = e.formula.bits(by_region)  # the formula's regions, packed
            words[d, r] = words_of[key]
    sums, _ = checked_ranking(lambda v: ranked_region_sums(v, regions), x_held, neuron_offset)
    s2 = mask_region_sums(words, sums).cpu()
    pos = mask_region_sums(words, regions.sizes.unsqueeze(1).expand(g, db).contiguous()).cpu()
    cols = {"auc_heldout": auc_from_rank_sums(s2, pos, x_held.shape[0]).tolist()}
    stats = label_stats(x_held, words, regions, alpha)
    cols.update({f"{name}_heldout": fn(stats).tolist() for name, fn in METRICS.items()})
    return [
        [dataclasses.replace(e, **{c: v[d][r] for c, v in cols.items()}) for r, e in enumerate(labels)]
        for d, labels in enumerate(found)
    ]


class PermutationPlan:
    """The permutations of a search's significance test, the same for every neuron batch, chunk,
    process and device.

    Permutation i is drawn i-th from a CPU torch.Generator seeded with `seed`: torch.randperm(N)
    without groups; with groups, for each group size in ascending order (sizes shared by two or more
    groups), torch.randperm over the groups of that size, group j's samples then receiving, in order,
    the activations of the group drawn for it (a group whose size no other group has stays in place).
    Sample n of a permuted data set has the activations of sample perm[n].

    Args:
        n: samples; count: permutations P (0: none); seed: the generator's seed.
        groups: None or [N] integer group of each sample.
    """

    def __init__(self, n: int, count: int, seed: int, groups=None):
        self.n, self.count, self.seed = n, count, seed
        self.strata: list[torch.Tensor] = []  # per shared size: [groups, size] sample indices
        self.fixed = self.n_groups = 0
        self.grouped = groups is not None
        if groups is None:
            return
        _, inv, counts = torch.unique(check_groups(groups, n), return_inverse=True, return_counts=True)
        order = torch.argsort(inv, stable=True)  # samples of group 0, then group 1, ... (in sample order)
        starts = torch.cumsum(counts, 0) - counts
        for size in torch.unique(counts).tolist():
            members = (counts == size).nonzero().flatten()
            if members.numel() < 2:
                self.fixed += int(members.numel())
                continue
            idx = starts[members].unsqueeze(1) + torch.arange(size)
            self.strata.append(order[idx])  # [m, size]
        self.n_groups = int(counts.numel())

    def describe(self) -> str:
        """One line for exported parameters."""
        if not self.grouped:
            return "samples"
        return f"{self.n_groups} groups ({self.fixed} of a size no other group has stay in place)"

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed)
        for _ in range(self.count):
            if not self.grouped:
                yield torch.randperm(self.n, generator=gen)
                continue
            perm = torch.arange(self.n)
            for members in self.strata:
                pi = torch.randperm(members.shape[0], generator=gen)
                perm[members.flatten()] = members[pi].flatten()
            yield perm


def permutation_groups(source, permutations: int, groups):
    """The groups a search's permutations exchange: `groups` when given; else, with permutations, a
    store's sequences where it has them (a delphi cache: tokens of one sequence are not exchangeable);
    else None (single samples)."""
    if groups is None and permutations and source is not None and hasattr(source, "sequences"):
        return source.sequences()
    return groups


def is_neuron_source(obj) -> bool:
    """An on-disk activation store: [N, D] .shape and .read(d0, d1) -> [N, d1 - d0] tensor."""
    return not isinstance(obj, torch.Tensor | np.ndarray) and hasattr(obj, "read") and hasattr(obj, "shape")


def explain_batch(
    x: torch.Tensor,
    d0: int,
    space: RegionSpace,
    params: SearchParams,
    plan: PermutationPlan | None = None,
    max_work: int | None = None,
    neuron_offset: int = 0,
    metrics: bool = True,
) -> list[list[Explanation]]:
    """The search for one batch of neurons, x [N, Db] contiguous (or SparseColumns) on the space's device; neuron d of the
    batch is numbered d0 + d in the results. With a plan of P > 0 permutations, the same search runs on
    each permutation of the samples (ranks are permuted, not recomputed) for p_value_search; with
    certify, an exact search bounds each neuron's best AUC. The objective (params.scorer) searches by
    its own per-sample statistic: the ranks for AUROC, the top samples' indicator for IoU, F1 and AUPRC;
    with metrics, every label gets its five metrics (core/metrics.py)."""
    n = space.n
    scorer = params.scorer

    def run(stat, totals):
        if params.search == "exact":
            return exact_search(stat, space, params, max_work=max_work, totals=totals)
        return beam_search(stat, space, params, totals)

    permuted = plan is not None and plan.count > 0
    if permuted:  # the permutations permute these ranks
        ranks, ties = checked_ranking(rank_columns, x, neuron_offset + d0)
        region_sums = region_rank_sums(ranks, space.regions)  # [G, Db]
    else:
        region_sums, ties = checked_ranking(lambda v: ranked_region_sums(v, space.regions), x, neuron_offset + d0)
    # The search's statistic: AUROC's rank sums; T's indicator (the overlap objectives: from the metrics'
    # region sums when dense activations compute them anyway, else listed by top_weights, as the sparse
    # path and the permutations need); or the scaled activations q (correlation, cosine).
    sparse = isinstance(x, SparseColumns)
    listed = scorer.uses_top and (sparse or permuted or not metrics)
    top = top_weights(x, params.alpha) if listed or (metrics and sparse) else None
    sums = metric_sums(x, space.regions, params.alpha, top) if metrics else None
    weights = totals = None
    stat = region_sums
    if scorer.uses_top and not listed:
        stat, totals = sums.t.to(region_sums.device), sums.totals.to(region_sums.device)
    elif scorer.uses_top or scorer.uses_values:  # the labels' rank sums then follow from their masks
        weights, totals = top if scorer.uses_top else value_weights(x)
        stat = region_rank_sums(weights, space.regions)
    beams = run(stat, totals)
    bound, certified = _certify(beams, stat, totals, space, params, max_work)
    # p-values on the CPU whatever the device: special functions may differ in the last bit across
    # backends, and labels must be identical everywhere (the inputs are small: [Db, B]).
    ties_c = ties.cpu().unsqueeze(1)
    s2 = (beams.s2 if scorer is AUROC else mask_region_sums(beams.words, region_sums)).cpu()
    pos, valid = beams.pos.cpu(), beams.valid.cpu()
    pvals, log10 = mannwhitney_pvalues(s2, pos, n, ties_c, params.alternative)
    p_search = torch.full_like(pvals, float("nan"))
    if permuted:
        if scorer is AUROC:
            two_sided = log10 if params.alternative == "two-sided" else mannwhitney_pvalues(s2, pos, n, ties_c)[1]
        hits = torch.zeros_like(pos)
        for perm in plan:
            if scorer is AUROC:
                null = run(region_rank_sums(ranks, space.regions, perm.to(ranks.device)), None)
                t = mannwhitney_pvalues(null.s2.cpu(), null.pos.cpu(), n, ties_c)[1]
                t = t.masked_fill(~null.valid.cpu(), float("inf")).min(1).values  # [Db]: T of this permutation
                hits += t.unsqueeze(1) <= two_sided
            else:  # T = the best score of the objective (the null search's rank-0 label, exact)
                null = run(region_rank_sums(weights, space.regions, perm.to(stat.device)), totals)
                hits += _reaches(null, beams, totals, scorer, n)
        p_search = ((1 + hits).double() / (1 + plan.count)).masked_fill(~valid, float("nan"))
        del ranks
    metric_l = {}
    if metrics:
        stats = label_stats(x, beams.words, space.regions, params.alpha, top, sums=sums)
        metric_l = {name: fn(stats).masked_fill(~valid, float("nan")).tolist() for name, fn in METRICS.items()}
    hist = beams.hist.cpu().tolist()
    auc_l, pos_l, p_l, log_l, ps_l, ok, bound_l, cert_l = (
        t.tolist() for t in (auc_from_rank_sums(s2, pos, n), pos, pvals, log10, p_search, valid, bound, certified)
    )
    out = []
    with _gc_paused():  # tens of thousands of small acyclic objects: no cycle collection midway
        for d in range(x.shape[1]):
            exps = []
            for r in range(params.B):
                if not ok[d][r]:
                    break
                f = space.formula([t for t in hist[d][r] if t >= 0])
                a = auc_l[d][r]
                exps.append(
                    Explanation(
                        neuron=d0 + d,
                        rank=r,
                        formula=f,
                        length=f.length,
                        auc=a,
                        differentiability=2 * abs(a - 0.5),
                        concept_fraction=pos_l[d][r] / n,
                        p_value=p_l[d][r],
                        log10_p_value=log_l[d][r],
                        p_value_search=ps_l[d][r],
                        bound=bound_l[d],
                        certified=cert_l[d],
                        **{name: v[d][r] for name, v in metric_l.items()},
                    )
                )
            out.append(exps)
    return out


@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cycle collector while building result rows (restored as it was): the rows and
    their formulas hold no cycles, and each generation-2 collection their allocations trigger walks
    every live object (more than building the rows costs)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _certify(beams: Beams, stat, totals, space: RegionSpace, params: SearchParams, max_work):
    """Per neuron: the bound on the best score of the objective (AUROC: the AUC) any admissible formula of
    <= L atoms reaches ([Db] float64, NaN when not asked, when none exists, or for correlation and cosine,
    whose search scores are not the metric itself) and whether the rank-0 label reaches it exactly ([Db]
    bool). stat, totals: the objective's per-region statistic and per-neuron totals (AUROC: rank sums, None)."""
    db, n = beams.s2.shape[0], space.n
    scorer = params.scorer
    nan = torch.full((db,), float("nan"), dtype=torch.float64)
    no = torch.zeros(db, dtype=torch.bool)
    tt = None if totals is None else totals.cpu()

    def value(s, p):
        return auc_from_rank_sums(s, p, n) if scorer is AUROC else scorer.score(s, p, n, tt)

    if params.search == "exact":
        if not scorer.exact:
            return nan, no
        ok = beams.valid[:, 0].cpu()
        return torch.where(ok, value(beams.s2[:, 0].cpu(), beams.pos[:, 0].cpu()), nan), ok
    if not params.certify:
        return nan, no
    have = beams.valid[:, 0]
    floor = (beams.s2[:, 0], torch.where(have, beams.pos[:, 0], torch.zeros_like(beams.pos[:, 0])))
    best = exact_search(stat, space, params, top=1, floor=floor, max_work=max_work, totals=totals)
    ok = best.valid[:, 0].cpu()
    bs2, bp = best.s2[:, 0].cpu().tolist(), best.pos[:, 0].cpu().tolist()
    s2, p, hv = beams.s2[:, 0].cpu().tolist(), beams.pos[:, 0].cpu().tolist(), have.cpu().tolist()
    t = [None] * db if tt is None else tt.tolist()
    # Exactly equal scores: cross-multiplied Python integers.
    same = [
        bool(o and h and scorer.compare(a, q, c, b, n, u) == 0)
        for o, h, a, q, c, b, u in zip(ok.tolist(), hv, bs2, bp, s2, p, t, strict=True)
    ]
    return torch.where(ok, value(best.s2[:, 0].cpu(), best.pos[:, 0].cpu()), nan), torch.tensor(same, dtype=torch.bool)


def beam_search(
    region_sums: torch.Tensor, space: RegionSpace, params: SearchParams, totals=None, grammar: Grammar = INVERT
) -> Beams:
    """The beam search of a batch of neurons from their per-region statistics [G, Db] (AUROC: doubled rank
    sums; totals None) or the objective's with totals [Db] (each neuron's statistic over all samples): the
    final beams. grammar: INVERT's (explain) or Mu & Andreas' (dissection/compositional.py)."""
    n, sign, scorer = space.n, params.sign, params.scorer
    stat_bounds = scorer.bounds(n)
    s2_c = space.concept_sums(region_sums, stat_bounds[0]).t()  # [Db, K] (exact: core/auroc.exact_chunks)
    total = scorer.total(n) if totals is None else totals.unsqueeze(1)
    atom_s2 = torch.cat([s2_c, total - s2_c], 1)  # [Db, 2K]
    atom_p = torch.cat([space.counts, n - space.counts])  # [2K]
    bounds = (0, n) if grammar.all_sizes else params.size_bounds(n)
    ok_atom = (atom_p >= bounds[0]) & (atom_p <= bounds[1])
    if not grammar.first_negated:
        ok_atom[space.k :] = False
    atom_score = torch.where(ok_atom, sign * scorer.score(atom_s2, atom_p, n, total), NEG_INF)  # admissible: no NaN
    db = region_sums.shape[1]

    win, _, _, _ = select_winners(
        atom_gather(atom_score, atom_s2, atom_p), atom_chooser(space, params, db, totals), db, space, params
    )
    beams = Beams.of_atoms(win, atom_s2, atom_p, space, params.L)
    if grammar.every_atom:
        ext = torch.ones(db, 2 * space.k, dtype=torch.bool, device=atom_s2.device)
    else:
        ext = _extension_atoms(atom_s2, atom_p, space, params)
    for _length in range(2, params.L + 1):
        x, x_p, shift = space.beam_concept_sums(region_sums, beams.words, stat_bounds)  # [Db, B, K]
        beams = extend(beams, x, x_p, shift, space, s2_c, ext, params, bounds, totals=totals, grammar=grammar)
    return beams


def mask_region_sums(words: torch.Tensor, region_sums: torch.Tensor) -> torch.Tensor:
    """[Db, B] int64 sums of region_sums [G, Db] over packed region masks words [Db, B, W] (e.g. the doubled
    rank sums of labels found by another objective), in blocks of neurons."""
    db, b, _ = words.shape
    g = region_sums.shape[0]
    out = torch.zeros(db, b, dtype=torch.int64, device=words.device)
    step = max(1, (1 << 26) // max(1, b * g))
    for d0 in range(0, db, step):
        m = unpack_bits(words[d0 : d0 + step], g).long()  # [d, B, G]
        out[d0 : d0 + step] = torch.einsum("dbg,gd->db", m, region_sums[:, d0 : d0 + step].long())
    return out


def _reaches(null: Beams, beams: Beams, totals: torch.Tensor, scorer, n: int) -> torch.Tensor:
    """[Db, B] int64: 1 where the null search's best label scores at least each label, exactly (cross
    products of the objective's rationals: integers below N^2; correlation and cosine: their float64 scores,
    which are the objective's values, csrc/objective.h)."""
    t = totals.unsqueeze(1)
    if not scorer.exact:
        best = scorer.score(null.s2[:, :1], null.pos[:, :1], n, t)
        return ((best >= scorer.score(beams.s2, beams.pos, n, t)) & null.valid[:, :1]).long().cpu()
    num_b, den_b = scorer.rational(null.s2[:, :1], null.pos[:, :1], n, t)
    num_l, den_l = scorer.rational(beams.s2, beams.pos, n, t)
    hit = (num_b * den_l >= num_l * den_b) & null.valid[:, :1]
    return hit.long().cpu()


def _extension_atoms(atom_s2: torch.Tensor, atom_p: torch.Tensor, space: RegionSpace, params: SearchParams):
    """[Db, 2K] bool: each neuron's extension atoms. With limit_search, the limit_search atoms of
    largest differentiability |S2 - P(N+1)| / (P(N-P)), ties by AUC in the mode's direction, then
    text; every comparison exact."""
    n, k = space.n, space.k
    db = atom_s2.shape[0]
    defined = ((atom_p > 0) & (atom_p < n)).expand(db, 2 * k)
    limit = params.limit_search
    if limit is None or limit >= 2 * k:
        return defined.clone()
    p = atom_p.expand(db, 2 * k)
    den_d = torch.where(defined, p * (n - p), torch.ones_like(p))
    num_d = torch.where(defined, (atom_s2 - p * (n + 1)).abs(), -torch.ones_like(p))  # undefined: last
    num_a = torch.where(defined, sign_int(params.sign) * AUROC.rational(atom_s2, p, n)[0], torch.zeros_like(p))
    den_a = 2 * den_d
    diff, score = num_d.double() / den_d.double(), num_a.double() / den_a.double()
    rows = torch.arange(db, device=p.device).unsqueeze(1).expand(db, 2 * k)
    flat = lambda t: t.reshape(-1)  # noqa: E731
    sub_d = exact_subrank(torch.stack([flat(rows), float_key(flat(diff))], 1), flat(num_d), flat(den_d)).view(db, -1)
    sub_a = exact_subrank(torch.stack([flat(rows), float_key(flat(score))], 1), flat(num_a), flat(den_a)).view(db, -1)
    # Stable sorts along each row, least significant key first: text, then AUC, then differentiability.
    perm = space.atom_text_order.expand(db, 2 * k)
    for key in (sub_a, -score, sub_d, -diff):
        perm = perm.gather(1, torch.sort(key.gather(1, perm), dim=1, stable=True).indices)
    chosen = perm[:, :limit]
    ext = torch.zeros(db, 2 * k, dtype=torch.bool, device=p.device)
    ext.scatter_(1, chosen, defined.gather(1, chosen))
    return ext
