"""INVERT's beam search for every neuron at once, in region space.

Every formula is a union of regions (groups of samples sharing a concept vector), so beams are
kept as region masks and every AUROC of the search follows from per-region rank sums. One step for
a batch of neurons is a single product: X[d, b, c] = sum of (rank sum, count) of beam b AND concept c
over regions. Inclusion-exclusion then gives all four candidates:
    b & c = X,  b & ~c = b - X,  b | c = b + c - X,  b | ~c = total - c + X.
Counts ride along with rank sums in one integer (sum * 2^s + count), so one product yields both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import _ops
from ._validate import as_activations, check_positive_int
from .auroc import auc_from_rank_sums, choose_method, concept_rank_sums, default_max_memory, region_rank_sums
from .concepts import ConceptSet
from .formula import Formula
from .results import Explanation, Explanations
from .stats import ADJUSTMENTS, ALTERNATIVES, adjust_pvalues, mannwhitney_pvalues

_NEG_INF = float("-inf")
MODES = ("positive", "negative")


class _Space:
    """Region-space view of a concept set on one device, shared by all neuron batches."""

    def __init__(self, concepts: ConceptSet, method: str):
        self.regions = concepts.regions()
        self.method = choose_method(self.regions, method)
        self.n = concepts.n_samples
        self.k = len(concepts)
        self.counts = concepts.counts  # [K]
        self.member = self.regions.membership_bool  # [K, G]
        n = self.n
        self.shift = max(1, n.bit_length())  # 2^shift > N: counts fit below the rank sum
        # Pack (rank sum, count) in one integer when the total over all samples stays exact: int64
        # for the sparse gather, float64 (2^53) for the dense product.
        limit = 2**63 if self.method == "sparse" else 2**53
        self.packed = n * (n + 1) * 2**self.shift + n < limit
        names = concepts.names
        self.atoms = [Formula.atom(s) for s in names] + [Formula.atom(s, True) for s in names]  # [2K]
        order = sorted(range(2 * self.k), key=lambda a: str(self.atoms[a]))
        self.atom_text_order = torch.tensor(order, dtype=torch.long, device=concepts.device)

    def masked_sums(self, weights: torch.Tensor, mask: torch.Tensor, per_sample_max: int) -> torch.Tensor:
        """sum over regions of weights[g, d] * mask[d, b, g] * member[c, g].

        Args:
            weights: [G, Db] int64; mask: [Db, B, G] bool.

        Returns:
            [Db, B, K] int64.
        """
        db, b, g = mask.shape
        vals = (weights.t().unsqueeze(1) * mask).reshape(db * b, g).t().contiguous()  # [G, Db*B]
        out = concept_rank_sums(vals, self.regions, self.method, per_sample_max)  # [K, Db*B]
        return out.t().reshape(db, b, self.k)

    def beam_concept_sums(self, region_sums: torch.Tensor, mask: torch.Tensor):
        """(doubled rank sums, counts) of every beam formula AND every concept: two [Db, B, K] int64."""
        n = self.n
        sizes = self.regions.sizes.unsqueeze(1)
        if self.packed:
            w = region_sums.long() * 2**self.shift + sizes
            x = self.masked_sums(w, mask, 2 * n * 2**self.shift + 1)
            return x >> self.shift, x & (2**self.shift - 1)
        s = self.masked_sums(region_sums.long(), mask, 2 * n)
        p = self.masked_sums(sizes.expand_as(region_sums).contiguous(), mask, 1)
        return s, p


class _Beams:
    """The current beams of a batch of neurons: formulas (Python) and their masks and sums (tensors)."""

    def __init__(self, formulas, s2, pos, mask, valid):
        self.formulas: list[list[Formula]] = formulas  # [Db][<=B]
        self.s2, self.pos = s2, pos  # [Db, B] int64
        self.mask = mask  # [Db, B, G] bool
        self.valid = valid  # [Db, B] bool


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
    alternative: str = "two-sided",
    adjust: str | None = None,
    method: str = "auto",
    max_memory: int | None = None,
    layer: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> Explanations:
    """Label every neuron with its best compositional formulas (INVERT), exactly.

    Semantics are those of INVERT 1.1 (lapalap/invert) with its defects fixed: atoms are every
    concept c and ~c; the length-1 beam holds the B admissible atoms of best AUC; each further step
    joins every beam formula b with every extension atom a as b & a and b | a, drops candidates that
    are not admissible or leave b's mask unchanged, keeps equivalent formulas once, and takes the best
    B of the old beam plus the candidates. Order: AUC (descending in "positive" mode, ascending in
    "negative"), then shorter length, then formula text.

    Args:
        activations: [N, D] tensor or numpy array (N samples, D neurons); NaN is an error.
        concepts: ConceptSet, or [N, K] 0/1 matrix (names c0, c1, ...).
        L: longest formula (atom occurrences), >= 1.
        B: beam size and number of labels per neuron, >= 1.
        limit_search: extension atoms per neuron: the limit_search atoms of largest differentiability
            2|AUC - 0.5| among all 2K atoms; None for all.
        min_fraction, max_fraction: admissible share of samples in a formula's mask (also 0 < share < 1).
        mode: "positive" (formulas the neuron activates for) or "negative".
        device: where to compute (default: the activations' device); results are identical on all.
        alternative: Mann-Whitney alternative for p-values: "two-sided", "greater", "less".
        adjust: None, "bh" or "bonferroni": adjust p-values across neurons (per rank).
        method: "auto", "sparse" or "dense" rank-sum products.
        max_memory: working-memory budget in bytes (neurons are batched within it).
        layer: name written into exported tables.
        progress: called as progress(done_neurons, total_neurons) after each batch.

    Returns:
        Explanations: res[d] is neuron d's list of Explanation, best first, at most B.

    Example:
        >>> res = explain(acts, concepts, L=3, B=10)
        >>> e = res[0][0]; print(e.formula, e.auc, e.p_value)
    """
    x = as_activations(activations)
    L = check_positive_int(L, "L")
    B = check_positive_int(B, "B")
    if limit_search is not None:
        limit_search = check_positive_int(limit_search, "limit_search")
    min_fraction = _fraction(min_fraction, "min_fraction")
    max_fraction = _fraction(max_fraction, "max_fraction")
    if min_fraction > max_fraction:
        raise ValueError(f"min_fraction: must not exceed max_fraction, got {min_fraction} > {max_fraction}")
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative: expected one of {ALTERNATIVES}, got {alternative!r}")
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust: expected one of {ADJUSTMENTS}, got {adjust!r}")
    cs = concepts if isinstance(concepts, ConceptSet) else ConceptSet(concepts)
    n, d_total = x.shape
    if cs.n_samples != n:
        raise ValueError(f"concepts: expected {n} samples (rows of activations), got a concept set over {cs.n_samples}")
    if n < 2:
        raise ValueError(f"activations: need at least 2 samples to compare inside and outside a mask, got {n}")
    dev = torch.device(device) if device is not None else x.device
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {dev} was asked for, but torch sees no CUDA device")
    _ops.check_device(torch.empty(0, device=dev), "explain")
    cs = cs.to(dev)
    space = _Space(cs, method)
    if max_memory is None:
        max_memory = default_max_memory(dev)
    max_memory = check_positive_int(max_memory, "max_memory")
    params = dict(
        L=L,
        B=B,
        limit_search=limit_search,
        min_fraction=min_fraction,
        max_fraction=max_fraction,
        mode=mode,
        alternative=alternative,
        adjust=adjust,
        method=space.method,
        n_samples=n,
        n_concepts=space.k,
    )

    g, k = space.regions.num_regions, space.k
    per_neuron = 4 * n + 8 * n + 8 * g + B * g * (1 + 8 + (8 if space.method == "dense" else 0)) + 200 * B * k
    step = max(1, min(d_total, 4096, max_memory // per_neuron))
    per_neuron_results: list[list[Explanation]] = []
    for d0 in range(0, d_total, step):
        xb = x[:, d0 : d0 + step].to(dev)
        per_neuron_results += _explain_batch(
            xb, d0, space, L, B, limit_search, min_fraction, max_fraction, mode, alternative
        )
        if progress is not None:
            progress(min(d_total, d0 + step), d_total)
    if adjust is not None:
        _adjust(per_neuron_results, adjust)
    return Explanations(per_neuron_results, params, layer)


def _fraction(v, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"{name}: expected a number in [0, 1], got {type(v).__name__} {v!r}")
    if not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {v}")
    return float(v)


def _explain_batch(x, d0, space: _Space, L, B, limit_search, min_fraction, max_fraction, mode, alternative):
    n, k = space.n, space.k
    sign = 1.0 if mode == "positive" else -1.0
    ranks, ties = _ops.rank_doubled_ties(x)
    region_sums = region_rank_sums(ranks, space.regions)  # [G, Db]
    del ranks
    s2_c = concept_rank_sums(region_sums, space.regions, space.method).t()  # [Db, K]
    total = n * (n + 1)
    p_c = space.counts
    atom_s2 = torch.cat([s2_c, total - s2_c], 1)  # [Db, 2K]
    atom_p = torch.cat([p_c, n - p_c])  # [2K]
    atom_auc = auc_from_rank_sums(atom_s2, atom_p, n)  # [Db, 2K]
    ok_atom = _admissible(atom_p, n, min_fraction, max_fraction)
    atom_score = torch.where(ok_atom, sign * atom_auc, _NEG_INF)  # admissible atoms have 0 < P < N: no NaN

    # Length 1: the beam is the best B admissible atoms.
    db = x.shape[1]
    picks = _select(atom_score, B, lambda d, j: (space.atoms[j], 1, j))
    beams = _beams_from_atoms(picks, space, atom_s2, atom_p, db, B)

    # Extension atoms per neuron: the limit_search atoms of largest differentiability (ties: text order).
    if limit_search is None or limit_search >= 2 * k:
        ext = ~atom_auc.isnan()
    else:
        diff = (2 * (atom_auc - 0.5).abs()).nan_to_num(nan=-1.0)[:, space.atom_text_order]
        top = torch.sort(diff, dim=1, descending=True, stable=True)
        chosen = space.atom_text_order[top.indices[:, :limit_search]]
        ext = torch.zeros_like(atom_auc, dtype=torch.bool)
        ext.scatter_(1, chosen, top.values[:, :limit_search] >= 0)

    for _length in range(2, L + 1):
        beams = _step(beams, region_sums, space, s2_c, ext, B, sign, min_fraction, max_fraction)

    auc = auc_from_rank_sums(beams.s2, beams.pos, n)
    pvals, log10 = mannwhitney_pvalues(beams.s2, beams.pos, n, ties.unsqueeze(1), alternative)
    out = []
    for d in range(db):
        exps = []
        for r, f in enumerate(beams.formulas[d]):
            a = auc[d, r].item()
            exps.append(
                Explanation(
                    neuron=d0 + d,
                    rank=r,
                    formula=f,
                    length=f.length,
                    auc=a,
                    differentiability=2 * abs(a - 0.5),
                    concept_fraction=beams.pos[d, r].item() / n,
                    p_value=pvals[d, r].item(),
                    log10_p_value=log10[d, r].item(),
                )
            )
        out.append(exps)
    return out


def _admissible(p: torch.Tensor, n: int, lo: float, hi: float) -> torch.Tensor:
    frac = p.double() / n
    return (p > 0) & (p < n) & (frac >= lo) & (frac <= hi)


def _select(score: torch.Tensor, B: int, make) -> list[list[tuple]]:
    """Best B distinct formulas per row of a candidate score matrix.

    Args:
        score: [Db, C] float64, -inf for candidates that do not exist or are not admissible.
        make: make(d, j) -> (formula, length, j) for candidate column j of neuron d.

    Returns:
        per neuron, up to B (formula, length, column) in the final order.
    """
    db, c = score.shape
    if c == 0:
        return [[] for _ in range(db)]
    valid_count = (score > _NEG_INF).sum(1).tolist()
    k0 = min(c, 2 * B)
    thr = torch.topk(score, k0, dim=1).values[:, -1:]
    sel = ((score >= thr) & (score > _NEG_INF)).nonzero().tolist()
    by_row: list[list[int]] = [[] for _ in range(db)]
    for d, j in sel:
        by_row[d].append(j)
    score_cpu = None
    picks = []
    for d in range(db):
        cols = by_row[d]
        while True:
            if score_cpu is None:
                score_cpu = score.cpu()
            best = _dedup_sort(d, cols, score_cpu, make)
            if len(best) >= B or len(cols) >= valid_count[d]:
                break
            # Fewer than B distinct formulas among the gathered candidates: widen for this neuron.
            k = min(c, 4 * max(len(cols), 1))
            t = torch.topk(score_cpu[d], k).values[-1]
            cols = ((score_cpu[d] >= t) & (score_cpu[d] > _NEG_INF)).nonzero().flatten().tolist()
        picks.append(best[:B])
    return picks


def _dedup_sort(d, cols, score_cpu, make):
    seen: dict[Formula, tuple] = {}
    row = score_cpu[d]
    for j in cols:
        f, length, col = make(d, j)
        if f not in seen:
            seen[f] = (-row[col].item(), length, str(f), f, col)
    ordered = sorted(seen.values(), key=lambda t: t[:3])
    return [(t[3], t[1], t[4]) for t in ordered]


def _beams_from_atoms(picks, space: _Space, atom_s2, atom_p, db, B) -> _Beams:
    dev = atom_s2.device
    g = space.regions.num_regions
    s2 = torch.zeros(db, B, dtype=torch.int64, device=dev)
    pos = torch.zeros(db, B, dtype=torch.int64, device=dev)
    mask = torch.zeros(db, B, g, dtype=torch.bool, device=dev)
    valid = torch.zeros(db, B, dtype=torch.bool, device=dev)
    rows, slots, atoms = [], [], []
    formulas = []
    for d, pk in enumerate(picks):
        formulas.append([f for f, _, _ in pk])
        for r, (_, _, j) in enumerate(pk):
            rows.append(d)
            slots.append(r)
            atoms.append(j)
    if rows:
        r_t, s_t, a_t = (torch.tensor(v, dtype=torch.long, device=dev) for v in (rows, slots, atoms))
        s2[r_t, s_t] = atom_s2[r_t, a_t]
        pos[r_t, s_t] = atom_p[a_t]
        mask[r_t, s_t] = _atom_masks(space, a_t)
        valid[r_t, s_t] = True
    return _Beams(formulas, s2, pos, mask, valid)


def _atom_masks(space: _Space, atoms: torch.Tensor) -> torch.Tensor:
    """[E, G] region masks of atoms (a < K: concept a; a >= K: NOT concept a - K)."""
    k = space.k
    return space.member[atoms % k] ^ (atoms >= k).unsqueeze(1)


def _step(beams: _Beams, region_sums, space: _Space, s2_c, ext, B, sign, min_fraction, max_fraction) -> _Beams:
    n, k = space.n, space.k
    db = s2_c.shape[0]
    x_s, x_p = space.beam_concept_sums(region_sums, beams.mask)  # [Db, B, K] each
    sb, pb = beams.s2.unsqueeze(2), beams.pos.unsqueeze(2)  # [Db, B, 1]
    sc, pc = s2_c.unsqueeze(1), space.counts.view(1, 1, k)  # [Db, 1, K], [1, 1, K]
    total = n * (n + 1)
    # [Db, B, 2 ops (and, or), 2K atoms (c then ~c)]
    cand_s = torch.stack([torch.cat([x_s, sb - x_s], 2), torch.cat([sb + sc - x_s, total - sc + x_s], 2)], 2)
    cand_p = torch.stack([torch.cat([x_p, pb - x_p], 2), torch.cat([pb + pc - x_p, n - pc + x_p], 2)], 2)
    del x_s, x_p
    auc = auc_from_rank_sums(cand_s, cand_p, n)
    ok = (
        _admissible(cand_p, n, min_fraction, max_fraction)
        & (cand_p != pb.unsqueeze(3))  # the atom changed the mask
        & beams.valid.view(db, B, 1, 1)
        & ext.view(db, 1, 1, 2 * k)
    )
    cand_score = torch.where(ok, sign * auc, _NEG_INF).reshape(db, -1)
    old_auc = auc_from_rank_sums(beams.s2, beams.pos, n)
    old_score = torch.where(beams.valid, sign * old_auc, _NEG_INF)
    score = torch.cat([old_score, cand_score], 1)  # [Db, B + B*4K]
    per_beam = 4 * k

    def make(d, j):
        if j < B:
            f = beams.formulas[d][j]
            return f, f.length, j
        b, rem = divmod(j - B, per_beam)
        op, a = divmod(rem, 2 * k)
        base = beams.formulas[d][b]
        f = (base & space.atoms[a]) if op == 0 else (base | space.atoms[a])
        return f, f.length, j

    picks = _select(score, B, make)
    # Gather the new beams' sums and masks.
    dev = score.device
    s_all = torch.cat([beams.s2, cand_s.reshape(db, -1)], 1)
    p_all = torch.cat([beams.pos, cand_p.reshape(db, -1)], 1)
    rows, slots, cols = [], [], []
    formulas = []
    for d, pk in enumerate(picks):
        formulas.append([f for f, _, _ in pk])
        for r, (_, _, j) in enumerate(pk):
            rows.append(d)
            slots.append(r)
            cols.append(j)
    g = beams.mask.shape[2]
    s2 = torch.zeros(db, B, dtype=torch.int64, device=dev)
    pos = torch.zeros(db, B, dtype=torch.int64, device=dev)
    mask = torch.zeros(db, B, g, dtype=torch.bool, device=dev)
    valid = torch.zeros(db, B, dtype=torch.bool, device=dev)
    if rows:
        r_t, s_t, c_t = (torch.tensor(v, dtype=torch.long, device=dev) for v in (rows, slots, cols))
        s2[r_t, s_t] = s_all[r_t, c_t]
        pos[r_t, s_t] = p_all[r_t, c_t]
        valid[r_t, s_t] = True
        is_new = c_t >= B
        b_t = torch.where(is_new, (c_t - B) // per_beam, c_t)
        rem = (c_t - B) % per_beam
        op_or = rem // (2 * k) == 1
        a_t = rem % (2 * k)
        base = beams.mask[r_t, b_t]  # [E, G]
        am = _atom_masks(space, a_t)
        new = torch.where(op_or.unsqueeze(1), base | am, base & am)
        mask[r_t, s_t] = torch.where(is_new.unsqueeze(1), new, base)
    return _Beams(formulas, s2, pos, mask, valid)


def _adjust(results: list[list[Explanation]], method: str) -> None:
    depth = max((len(r) for r in results), default=0)
    for rank in range(depth):
        idx = [d for d, r in enumerate(results) if len(r) > rank]
        p = torch.tensor([results[d][rank].p_value for d in idx], dtype=torch.float64)
        adj = adjust_pvalues(p, method).tolist()
        for d, a in zip(idx, adj, strict=True):
            e = results[d][rank]
            results[d][rank] = Explanation(**{**e.__dict__, "p_value_adjusted": a})
