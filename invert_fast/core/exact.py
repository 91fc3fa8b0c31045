"""The exact best formulas of at most three atoms, and admissible bounds on what a formula can reach.

The search space of length <= L is every formula INVERT's extension can build: ((a1 op a2) op a3)
with atoms c and ~c and op AND / OR. Admissibility (min_fraction <= fraction <= max_fraction,
0 < fraction < 1) applies to the returned formula only, not to its parts. The best formulas are the
B best distinct masks by AUC (mode direction), each represented by its shortest formula, then the
first in text order: the beam search's order and selection (space.extend, select_winners).

- L <= 2: one "step" whose beams are all 2K atoms: every pair of atoms from the sums over the regions
  two concepts share (ops.pair_sums), negations and OR by inclusion-exclusion, scored and selected
  by the beam step's fused kernel and exact selection.
- L = 3: branch and bound over the formulas of two atoms (prefixes). For a prefix b, every b AND a
  is a union of regions inside b, every b OR a adds regions outside b; for each admissible size P the
  fractional knapsack (regions by mean rank, the last one fractional) bounds the rank sum such a mask
  can have, so max over P of (S(P) - P (P + 1)) / (2 P (N - P)) bounds its AUC. A prefix is dropped
  only when its bound is strictly below the B-th best distinct AUC of the formulas of at most two
  atoms (compared as correctly rounded floats: a float strictly below is exactly below); the rest
  are extended like beams.
"""

from __future__ import annotations

import math

import torch

from .. import ops
from ..ops import PoolLayout
from .objectives import AUROC
from .order import exact_subrank, float_key
from .params import SearchParams
from .space import Beams, RegionSpace, atom_chooser, atom_gather, extend, select_winners, sign_int, step_chooser

EXACT_MAX_L = 3


def check_exact(params: SearchParams) -> None:
    """The settings the exact search is defined for (ValueError otherwise)."""
    if params.L > EXACT_MAX_L:
        raise ValueError(
            f"search: 'exact' is defined for L <= {EXACT_MAX_L} (from L = 4 on, formulas such as (a & b) | (c & d) "
            f"are outside what the extension builds), got L = {params.L}"
        )
    if params.limit_search is not None:
        raise ValueError(f"search: 'exact' searches every atom; limit_search must be None, got {params.limit_search}")
    if not params.distinct:
        raise ValueError("search: 'exact' returns distinct masks; distinct must be True, got False")


def exact_search(
    region_sums: torch.Tensor,
    space: RegionSpace,
    params: SearchParams,
    *,
    top: int | None = None,
    floor: tuple[torch.Tensor, torch.Tensor] | None = None,
    max_work: int | None = None,
    totals: torch.Tensor | None = None,
) -> Beams:
    """The `top` (default B) best distinct formulas of at most L <= 3 atoms of a batch of neurons.

    Args:
        region_sums: [G, Db] per-region statistics of params.scorer (AUROC: doubled rank sums; the other
            objectives, L <= 2 only: their statistic, with totals [Db] each neuron's over all samples).
        space, params: the search's (params.L <= 3).
        top: labels per neuron.
        floor: optional (s2 [Db], p [Db]) of a formula each neuron is known to reach (e.g. the beam's best),
            which tightens the pruning when top == 1; p == 0 where none.
        max_work: candidate evaluations allowed (None: no limit).

    Returns:
        Beams of `top` slots: the winners' histories, sums and masks, best first.
    """
    n, k = space.n, space.k
    top = params.B if top is None else top
    db = region_sums.shape[1]
    dev = region_sums.device
    s2_c = space.concept_sums(region_sums, params.scorer.bounds(n)[0]).t()  # [Db, K]
    total = params.scorer.total(n) if totals is None else totals.unsqueeze(1)
    atom_s2 = torch.cat([s2_c, total - s2_c], 1)  # [Db, 2K]
    atom_p = torch.cat([space.counts, n - space.counts])  # [2K]
    defined = (atom_p > 0) & (atom_p < n)
    bounds = params.size_bounds(n)
    sign = params.sign
    if params.L == 1 or k == 0:
        return _atoms_only(atom_s2, atom_p, space, params, top, bounds, totals)
    _check_work(max_work, db * (2 * k) * (4 * k + 1), f"{db} neurons x (2K)^2 pairs of atoms")

    # Length <= 2: every atom and every formula of two atoms (each unordered pair once).
    best = _pairs(region_sums, space, params, s2_c, atom_s2, atom_p, top, bounds, totals)
    if params.L == 2:
        return best
    ext = defined.expand(db, 2 * k).contiguous()

    # Length 3: branch and bound over the prefixes (formulas of two atoms).
    _check_work(max_work, db * (2 * k) * (2 * k - 1), f"bounds of every formula of two atoms for {db} neurons")
    hist, pmask, pwords = space.prefixes()  # [P, 3], [P, G], [P, W]
    n_prefix = hist.shape[0]
    if n_prefix == 0:
        return best
    thr_s2, thr_p = best.s2[:, top - 1], best.pos[:, top - 1]
    have = best.valid[:, top - 1]
    scorer = params.scorer
    if floor is not None and top == 1:
        f_s2, f_p = floor
        f_ok = (f_p > 0) & (f_p < n)
        better = f_ok & (~have | (_compare(f_s2, f_p, thr_s2, thr_p, n, sign, scorer, totals) > 0))
        thr_s2, thr_p, have = torch.where(better, f_s2, thr_s2), torch.where(better, f_p, thr_p), have | f_ok
    # Sums of every prefix: exact in float64 (every partial sum is an integer below 2^53).
    prefix_s2 = torch.mm(pmask.double(), region_sums.double()).round_().long()  # [P, Db]
    prefix_p = torch.mv(pmask.double(), space.regions.sizes.double()).round_().long()  # [P]
    if scorer is AUROC:
        ub = extension_bounds(region_sums, pmask, space, params)  # [Db, P] float bounds in the positive frame
        thr = _positive_frame_auc(thr_s2, thr_p, n, sign)  # [Db]
    else:  # IoU, F1 (check_exact): bounds from each prefix's |T & P| and |P|
        ub = overlap_extension_bounds(prefix_s2, prefix_p, n, params, totals)
        thr = scorer.score(thr_s2, thr_p, n, totals)
    keep = ub >= torch.where(have, thr, torch.full_like(thr, -math.inf)).unsqueeze(1)  # prune: strictly below
    counts = keep.sum(1)
    _check_work(max_work, int(counts.sum()) * (4 * k + 1), f"{int(counts.sum()):,} unpruned (neuron, prefix) pairs")
    width = top + int(counts.max())
    step = Beams(db, width, params.L, space.regions.num_regions, dev)
    for name in ("hist", "ntok", "length", "s2", "pos", "words", "valid"):
        getattr(step, name)[:, :top] = getattr(best, name)
    d_t, j_t = keep.nonzero().unbind(1)
    slot = top + (torch.cumsum(keep.long(), 1) - 1)[d_t, j_t]
    step.hist[d_t, slot] = hist[j_t]
    step.ntok[d_t, slot] = 2
    step.length[d_t, slot] = 2  # prefixes are new masks of two atoms: never an atom's (space.prefixes)
    step.words[d_t, slot] = pwords[j_t]
    step.s2[d_t, slot] = prefix_s2[j_t, d_t]
    step.pos[d_t, slot] = prefix_p[j_t]
    step.valid[d_t, slot] = True
    x, x_p, shift = space.beam_concept_sums(region_sums, step.words, params.scorer.bounds(n))
    return extend(step, x, x_p, shift, space, s2_c, ext, params, bounds, out=top, totals=totals)


def _pairs(
    region_sums, space: RegionSpace, params: SearchParams, s2_c, atom_s2, atom_p, top: int, bounds, totals=None
) -> Beams:
    """The `top` best distinct formulas of at most two atoms (ops.pair_sums, ops.pair_step_select)."""
    n, k, sign = space.n, space.k, params.sign
    db, dev = region_sums.shape[1], region_sums.device
    sizes = space.regions.sizes
    if space.packs(params.scorer.bounds(n)):
        w = region_sums.long() * 2**space.shift + sizes.unsqueeze(1)
        x, x_p, shift = ops.pair_sums(w, *space.region_csr(), k), None, space.shift
    else:
        x = ops.pair_sums(region_sums.long(), *space.region_csr(), k)
        x_p = ops.pair_sums(sizes.unsqueeze(1), *space.region_csr(), k).expand_as(x)
        shift = 0
    empty = x.new_empty(0)
    pool = PoolLayout(2 * k, k)

    def gather(neurons, kk):
        nd = neurons.to(dev)
        whole = nd.numel() == db
        pick = (lambda t: t) if whole else (lambda t: t.index_select(0, nd))
        xp = empty if shift else pick(x_p).contiguous()
        indptr, cols, _vals, valid, s2, p = ops.pair_step_select(
            pick(x), xp, shift, pick(s2_c), space.counts, n, bounds[0], bounds[1], sign, kk,
            None if totals is None else pick(totals), params.scorer.code,
        )  # fmt: skip
        counts = indptr.diff()
        return torch.repeat_interleave(nd, counts), cols, counts, valid, s2, p

    # The beams of the pair pool are the 2K atoms, the same for every neuron.
    atoms = torch.arange(2 * k, device=dev)
    hist0 = torch.full((1, 2 * k, params.L), -1, dtype=torch.int64, device=dev)
    hist0[0, :, 0] = atoms
    ones = torch.ones(1, 2 * k, dtype=torch.int64)
    choose = step_chooser(space, params, hist0, ones, space.atom_words[None], db, totals)
    win, win_s, win_p, lens = select_winners(gather, choose, db, space, params, top)
    out = Beams(db, top, params.L, space.regions.num_regions, dev)
    d_t, r_t = (win >= 0).nonzero().unbind(1)
    if d_t.numel():
        j_t = win[d_t, r_t]
        is_old, b, op, a = pool.decode_tensor(j_t)
        a = a.clamp(min=0)
        out.hist[d_t, r_t, 0] = b
        out.hist[d_t, r_t, 1] = torch.where(is_old, -1, (op + 1) * (2 * k) + a)
        out.ntok[d_t, r_t] = 1 + (~is_old).long()
        out.length[d_t, r_t] = lens[d_t, r_t]
        out.s2[d_t, r_t], out.pos[d_t, r_t] = win_s[d_t, r_t], win_p[d_t, r_t]
        out.valid[d_t, r_t] = True
        mb, ma = space.atom_words[b], space.atom_words[a]
        out.words[d_t, r_t] = torch.where(
            is_old.unsqueeze(1), mb, torch.where((op == 1).unsqueeze(1), mb | ma, mb & ma)
        )
    return out


def extension_bounds(region_sums: torch.Tensor, pmask: torch.Tensor, space: RegionSpace, params: SearchParams):
    """Admissible bounds on the AUC of every prefix joined with one more atom, per neuron.

    In the positive frame (for "negative" mode the ranks are mirrored, r' = 2 (N + 1) size - r, so that
    AUC' = 1 - AUC and a lower bound on AUC is one minus an upper bound on AUC').

    Args:
        region_sums: [G, Db]; pmask: [P, G] bool prefix masks in region space.

    Returns:
        [Db, P] float64: max over AND (subsets of the prefix) and OR (supersets) of the fractional-knapsack
        bound, each a correctly rounded ratio of integers (-inf where no admissible size is reachable).
    """
    n = space.n
    sizes = space.regions.sizes  # [G]
    r = region_sums.long().t()  # [Db, G]
    if params.sign < 0:
        r = 2 * (n + 1) * sizes - r
    p_lo, p_hi = params.size_bounds(n)
    db, g = r.shape
    # Regions by mean rank, descending, ties exact (float keys, then the exact ratios).
    mean = r.double() / sizes.double()
    rows = torch.arange(db, device=r.device).unsqueeze(1).expand(db, g)
    sub = exact_subrank(
        torch.stack([rows.reshape(-1), float_key(mean.reshape(-1))], 1), r.reshape(-1), sizes.expand(db, g).reshape(-1)
    ).view(db, g)
    order = torch.argsort(sub, dim=1, stable=True)
    order = order.gather(1, torch.argsort(-mean.gather(1, order), dim=1, stable=True))
    size_s = sizes[order]  # [Db, G]
    r_s = r.gather(1, order)
    out = torch.full((db, pmask.shape[0]), -math.inf, dtype=torch.float64, device=r.device)
    chunk = max(1, (1 << 22) // max(1, db * g))
    for p0 in range(0, pmask.shape[0], chunk):
        m = pmask[p0 : p0 + chunk][:, order].permute(1, 0, 2)  # [Db, C, G]: membership in each neuron's order
        inside_size = (m * size_s.unsqueeze(1)).sum(2)  # [Db, C]
        inside_sum = (m * r_s.unsqueeze(1)).sum(2)
        # AND: regions inside the prefix, from an empty mask; OR: regions outside, from the prefix.
        ub_and = _knapsack_bound(m, size_s, r_s, 0, 0, n, p_lo, p_hi)
        ub_or = _knapsack_bound(~m, size_s, r_s, inside_size, inside_sum, n, p_lo, p_hi)
        out[:, p0 : p0 + chunk] = torch.maximum(ub_and, ub_or)
    return out


def _knapsack_bound(take, size_s, r_s, size0, sum0, n, p_lo, p_hi):
    """max over segments of the greedy curve of an upper bound on (S - P(P+1)) / (2 P (N - P)).

    take: [Db, C, G] bool regions that may be added (in each neuron's order); size0, sum0: the start
    point ([Db, C] or 0). For segment j (region j partly or wholly added), P runs over [P0, P1]
    clipped to [p_lo, p_hi]: the rank sum is at most S(P1) and P (P + 1) at least lo (lo + 1); the
    denominator is at least its minimum over the clipped range (at an end: 2 P (N - P) is concave)."""
    sz = take * size_s.unsqueeze(1)
    p1 = torch.cumsum(sz, 2) + (size0.unsqueeze(2) if torch.is_tensor(size0) else size0)
    s1 = torch.cumsum(take * r_s.unsqueeze(1), 2) + (sum0.unsqueeze(2) if torch.is_tensor(sum0) else sum0)
    p0 = p1 - sz
    lo = torch.clamp(p0, min=p_lo)
    hi = torch.clamp(p1, max=p_hi)
    ok = take & (lo <= hi) & (hi >= 1)
    lo = lo.clamp(min=1)
    num = (s1 - lo * (lo + 1)).clamp(min=0)
    den = torch.minimum(2 * lo * (n - lo), 2 * hi * (n - hi)).clamp(min=1)
    val = torch.where(ok, num.double() / den.double(), -math.inf)
    return val.max(2).values if val.shape[2] else torch.full(val.shape[:2], -math.inf, dtype=torch.float64)


def _positive_frame_auc(s2, p, n, sign):
    """The AUC (positive mode) or 1 - AUC ("negative" mode: mirrored ranks) of masks, correctly rounded."""
    s = s2 if sign > 0 else AUROC.mirrored(s2, p, n)
    num, den = AUROC.rational(s, p, n)
    return num.double() / den.clamp(min=1).double()


def _compare(s_a, p_a, s_b, p_b, n, sign, scorer=AUROC, totals=None):
    """Exact sign of (score a - score b) per neuron by the objective, sign-aware (Python integers: no
    overflow); totals [Db]: the objective's per-neuron totals (None for AUROC)."""
    out = []
    tt = [None] * s_a.numel() if totals is None else totals.tolist()
    for sa, pa, sb, pb, t in zip(s_a.tolist(), p_a.tolist(), s_b.tolist(), p_b.tolist(), tt, strict=True):
        if pb <= 0 or pb >= n:
            out.append(1)
            continue
        out.append(sign_int(sign) * scorer.compare(sa, pa, sb, pb, n, t))
    return torch.tensor(out, dtype=torch.int64, device=s_a.device)


def overlap_extension_bounds(prefix_s, prefix_p, n: int, params: SearchParams, totals):
    """Sound bounds on the IoU or F1 of every prefix P joined with one more atom, per neuron, from S_P = |T & P|,
    |P| and |T| (docs: the statistics page proves them):

    - AND (the mask M is inside P): S_M <= S_P and |M| >= S_M, so IoU = S_M / (|T| + |M| - S_M) <= S_P / |T|
      and F1 = 2 S_M / (|T| + |M|) <= 2 S_P / (|T| + S_P); -inf when |P| is below the admissible sizes.
    - OR (M contains P): S_M <= |T| and |T | M| >= |T | P| = |T| + |P| - S_P, so IoU <= |T| / (|T| + |P| - S_P);
      |M| >= |P|, so F1 <= 2 |T| / (|T| + |P|); -inf when |P| is above the admissible sizes.

    Each is a correctly rounded ratio of exact integers, so comparing it with a correctly rounded score never
    prunes a prefix whose extension reaches it.

    Args:
        prefix_s: [P, Db] int64 S_P of every prefix for every neuron; prefix_p: [P] int64 |P|; n: samples;
        totals: [Db] int64 |T|.

    Returns:
        [Db, P] float64.
    """
    lo, hi = params.size_bounds(n)
    s, p, t = prefix_s.t(), prefix_p.unsqueeze(0), totals.unsqueeze(1)
    if params.objective == "iou":
        and_b = s.double() / t.clamp(min=1).double()
        or_b = t.double() / (t + p - s).clamp(min=1).double()
    else:  # f1
        and_b = (2 * s).double() / (t + s).clamp(min=1).double()
        or_b = (2 * t).double() / (t + p).clamp(min=1).double()
    and_b = torch.where(p >= lo, and_b, -math.inf)
    or_b = torch.where(p <= hi, or_b, -math.inf)
    return torch.maximum(and_b, or_b)


def _atoms_only(atom_s2, atom_p, space: RegionSpace, params: SearchParams, top: int, bounds, totals=None) -> Beams:
    n, db = space.n, atom_s2.shape[0]
    ok = (atom_p >= bounds[0]) & (atom_p <= bounds[1])
    total = params.scorer.total(n) if totals is None else totals.unsqueeze(1)
    score = torch.where(ok, params.sign * params.scorer.score(atom_s2, atom_p, n, total).nan_to_num(0.0), -math.inf)

    win, _, _, _ = select_winners(
        atom_gather(score, atom_s2, atom_p), atom_chooser(space, params, db, totals), db, space, params, top
    )
    return Beams.of_atoms(win, atom_s2, atom_p, space, params.L)


def _check_work(max_work: int | None, work: int, what: str) -> None:
    if max_work is not None and work > max_work:
        raise ValueError(
            f"max_work: the exact search needs {work:,} candidate evaluations ({what}), above max_work = "
            f"{max_work:,}; raise max_work or use search='beam'"
        )
