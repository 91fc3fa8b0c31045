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

from collections.abc import Callable

import torch

from .. import ops
from ..ops import PoolLayout
from .auroc import auc_from_rank_sums, choose_method, concept_rank_sums, default_max_memory, region_rank_sums
from .concepts import ConceptSet
from .formula import Formula
from .order import exact_subrank, float_key, packed_rows
from .params import SearchParams
from .results import Explanation, Explanations, adjust_explanations
from .stats import ADJUSTMENTS, mannwhitney_pvalues
from .validate import as_activations, check_positive_int, to_tensor

_NEG_INF = float("-inf")
AND, OR = 1, 2  # history op codes (0: the first atom)


class _Space:
    """Region-space view of a concept set on one device, shared by all neuron batches."""

    def __init__(self, concepts: ConceptSet, method: str):
        self.regions = concepts.regions()
        self.method = choose_method(self.regions, method)
        self.n = concepts.n_samples
        self.k = len(concepts)
        self.counts = concepts.counts  # [K]
        self.member = self.regions.membership_bool  # [K, G]
        self.member_t = self.member.t().contiguous()  # [G, K]
        n = self.n
        self.shift = max(1, n.bit_length())  # 2^shift > N: counts fit below the rank sum
        # Pack (rank sum, count) in one integer when the total over all samples stays exact: int64
        # for the sparse gather, float64 (2^53) for the dense product.
        limit = 2**63 if self.method == "sparse" else 2**53
        self.packed = n * (n + 1) * 2**self.shift + n < limit
        names = concepts.names
        self.atoms = [Formula.atom(s) for s in names] + [Formula.atom(s, True) for s in names]  # [2K]
        texts = [str(a).encode("utf-8") for a in self.atoms]
        self.atom_text = torch.tensor(list(b"".join(texts)), dtype=torch.uint8)  # on the CPU: for select_labels
        self.atom_offsets = torch.cumsum(torch.tensor([0] + [len(t) for t in texts]), 0)
        order = sorted(range(2 * self.k), key=lambda a: str(self.atoms[a]))
        self.atom_text_order = torch.tensor(order, dtype=torch.long, device=concepts.device)
        # Packed region masks of the 2K atoms (exact mask identity for distinct labels).
        atoms = torch.arange(2 * self.k, device=concepts.device)
        self.atom_words = packed_rows(self.atom_masks(atoms))  # [2K, ceil(G / 64)]
        self._formulas: dict[tuple, Formula] = {}

    def formula(self, hist: list[int]) -> Formula:
        """The Formula of an extension history (cached: labels repeat across neurons)."""
        key = tuple(hist)
        f = self._formulas.get(key)
        if f is None:
            k2 = 2 * self.k
            f = self.atoms[hist[0]]
            for t in hist[1:]:
                op, a = divmod(t, k2)
                f = f & self.atoms[a] if op == AND else f | self.atoms[a]
            self._formulas[key] = f
        return f

    def atom_masks(self, atoms: torch.Tensor) -> torch.Tensor:
        """[E, G] region masks of atoms [E] (a < K: concept a; a >= K: NOT concept a - K)."""
        return self.member[atoms % self.k] ^ (atoms >= self.k).unsqueeze(1)

    def masked_sums(self, weights: torch.Tensor, mask: torch.Tensor, per_sample_max: int, path=None) -> torch.Tensor:
        """sum over regions of weights[g, d] * mask[d, b, g] * member[c, g].

        Two ways, whichever touches less: concept-major (every concept's regions, for all beams at once:
        a sparse gather or an exact float64 GEMM), or beam-major (each beam formula's own regions, or
        those outside it subtracted from the total when that side is smaller): one weighted row of the
        region -> concept table per region, cheap when formulas cover few regions (ImageNet classes).

        Args:
            weights: [G, Db] int64; mask: [Db, B, G] bool.
            path: None (cheaper one), "beam" or "concept" (for tests).

        Returns:
            [Db, B, K] int64.
        """
        db, b, g = mask.shape
        cnt = mask.sum(-1)  # [Db, B]
        outside = cnt * 2 > g
        side = torch.where(outside, g - cnt, cnt)
        beam_major = int(side.sum()) * self.k
        if self.method == "sparse":
            concept_major = self.regions.concept_regions.numel() * db * b
        else:  # a GEMM multiply-add costs ~1/8 of a gathered addition (RESULTS.md)
            concept_major = self.k * g * db * b // 8
        if path == "beam" or (path is None and beam_major < concept_major):
            rows, regs = (mask ^ outside.unsqueeze(-1)).view(db * b, g).nonzero().unbind(1)
            indptr = torch.zeros(db * b + 1, dtype=torch.int64, device=mask.device)
            indptr[1:] = torch.cumsum(side.view(-1), 0)
            out = ops.weighted_row_sums(indptr, regs, weights[regs, rows // b], self.member_t).view(db, b, self.k)
            if bool(outside.any()):
                total = concept_rank_sums(weights, self.regions, self.method, per_sample_max).t()  # [Db, K]
                out = torch.where(outside.unsqueeze(-1), total.unsqueeze(1) - out, out)
            return out
        vals = (weights.t().unsqueeze(1) * mask).reshape(db * b, g).t().contiguous()  # [G, Db*B]
        out = concept_rank_sums(vals, self.regions, self.method, per_sample_max)  # [K, Db*B]
        return out.t().reshape(db, b, self.k)

    def beam_concept_sums(self, region_sums: torch.Tensor, mask: torch.Tensor):
        """(rank sum, size) of every beam formula AND every concept, as (x, x_p, shift).

        Packed (shift > 0): x [Db, B, K] int64 = (doubled rank sum << shift) + size, x_p empty.
        Otherwise: x the doubled rank sums and x_p the sizes, both [Db, B, K] int64, shift 0.
        """
        n = self.n
        sizes = self.regions.sizes.unsqueeze(1)
        if self.packed:
            w = region_sums.long() * 2**self.shift + sizes
            x = self.masked_sums(w, mask, 2 * n * 2**self.shift + 1)
            return x, x.new_empty(0), self.shift
        s = self.masked_sums(region_sums.long(), mask, 2 * n)
        p = self.masked_sums(sizes.expand_as(region_sums).contiguous(), mask, 1)
        return s, p, 0


class _Beams:
    """The current beams of a batch of neurons, as tensors.

    Attributes:
        hist: [Db, B, L] int64 extension histories (-1 padding); ntok: [Db, B] tokens used.
        s2, pos: [Db, B] int64 doubled rank sum and size of each beam formula's mask.
        mask: [Db, B, G] bool region masks; valid: [Db, B] bool (False: empty slot).
    """

    def __init__(self, db: int, B: int, L: int, g: int, dev):
        z = torch.zeros(db, B, dtype=torch.int64, device=dev)
        self.hist = torch.full((db, B, L), -1, dtype=torch.int64, device=dev)
        self.ntok = z.clone()
        self.s2, self.pos = z, z.clone()
        self.mask = torch.zeros(db, B, g, dtype=torch.bool, device=dev)
        self.valid = torch.zeros(db, B, dtype=torch.bool, device=dev)
        self._words = None

    @property
    def words(self) -> torch.Tensor:
        """[Db, B, ceil(G / 64)] int64 packed region masks (built once, for exact mask identity)."""
        if self._words is None:
            self._words = packed_rows(self.mask)
        return self._words


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
    "negative"), then shorter length, then formula text; every comparison is exact (rationals from
    integer rank sums), never float noise. With `distinct` (the default), formulas with equal sample
    masks count once everywhere (beams and results): the shortest, then first in text order, is kept.

    Args:
        activations: [N, D] tensor or numpy array (N samples, D neurons); NaN is an error.
        concepts: ConceptSet, or [N, K] 0/1 matrix (names c0, c1, ...).
        L: longest formula (atom occurrences), >= 1.
        B: beam size and number of labels per neuron, >= 1.
        limit_search: extension atoms per neuron: the limit_search atoms of largest differentiability
            2|AUC - 0.5| among all 2K atoms (ties: AUC in the mode's direction, then text); None for all.
        min_fraction, max_fraction: admissible share of samples in a formula's mask (also 0 < share < 1).
        mode: "positive" (formulas the neuron activates for) or "negative".
        device: where to compute (default: the activations' device); results are identical on all.
        distinct: one formula per distinct mask (default); False keeps formulas with equal masks but
            different text apart, as INVERT 1.1 does.
        permutations: P > 0 adds p_value_search, a permutation test of the whole search (max-T over
            each neuron's labels, see README); 0 leaves it NaN.
        seed: seed of the permutations (permutation i is the i-th torch.randperm of a CPU generator).
        groups: [N] ints: permute whole groups of samples (e.g. the sentence of each token) instead of
            single samples; groups of equal size are exchanged.
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
    params = SearchParams(
        L, B, limit_search, min_fraction, max_fraction, mode, alternative, distinct, permutations, seed
    )
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust: expected one of {ADJUSTMENTS}, got {adjust!r}")
    cs = concepts if isinstance(concepts, ConceptSet) else ConceptSet(concepts)
    n, d_total = x.shape
    if cs.n_samples != n:
        raise ValueError(f"concepts: expected {n} samples (rows of activations), got a concept set over {cs.n_samples}")
    if n < 2:
        raise ValueError(f"activations: need at least 2 samples to compare inside and outside a mask, got {n}")
    plan = PermutationPlan(n, params.permutations, params.seed, groups)
    dev = torch.device(device) if device is not None else x.device
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {dev} was asked for, but torch sees no CUDA device")
    ops.check_device(torch.empty(0, device=dev), "explain")
    cs = cs.to(dev)
    space = _Space(cs, method)
    if max_memory is None:
        max_memory = default_max_memory(dev)
    max_memory = check_positive_int(max_memory, "max_memory")
    exported = {**params.as_dict(), "adjust": adjust, "method": space.method, "n_samples": n, "n_concepts": space.k}
    if groups is not None:
        exported["groups"] = plan.describe()

    g, k, B = space.regions.num_regions, space.k, params.B
    per_neuron = 4 * n + 8 * n + 8 * g + B * g * (1 + 8 + (8 if space.method == "dense" else 0)) + 200 * B * k
    step = max(1, min(d_total, 4096, max_memory // per_neuron))
    per_neuron_results: list[list[Explanation]] = []
    for d0 in range(0, d_total, step):
        # One dense copy of the batch: strided inputs (a column slice, a transposed store) are slow to rank.
        xb = x[:, d0 : d0 + step].to(dev).contiguous()
        per_neuron_results += explain_batch(xb, d0, space, params, plan)
        if progress is not None:
            progress(min(d_total, d0 + step), d_total)
    if adjust is not None:
        adjust_explanations(per_neuron_results, adjust)
    return Explanations(per_neuron_results, exported, layer, cs.definitions)


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
        gr = to_tensor(groups, "groups")
        if gr.dim() != 1 or gr.numel() != n:
            raise ValueError(f"groups: expected [N] = [{n}] integer group ids, got shape {tuple(gr.shape)}")
        if gr.is_floating_point() or gr.is_complex() or gr.dtype == torch.bool:
            raise TypeError(f"groups: expected integer group ids, got dtype {gr.dtype}")
        _, inv, counts = torch.unique(gr.long().cpu(), return_inverse=True, return_counts=True)
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


def explain_batch(
    x: torch.Tensor, d0: int, space: _Space, params: SearchParams, plan: PermutationPlan | None = None
) -> list[list[Explanation]]:
    """The search for one batch of neurons, x [N, Db] contiguous on the space's device; neuron d of the
    batch is numbered d0 + d in the results. With a plan of P > 0 permutations, the same search runs on
    each permutation of the samples (ranks are permuted, not recomputed) for p_value_search."""
    n = space.n
    ranks, ties = ops.rank_doubled_ties(x)
    region_sums = region_rank_sums(ranks, space.regions)  # [G, Db]
    beams = _search(region_sums, space, params)
    # p-values on the CPU whatever the device: special functions may differ in the last bit across
    # backends, and labels must be identical everywhere (the inputs are small: [Db, B]).
    ties_c = ties.cpu().unsqueeze(1)
    s2, pos, valid = beams.s2.cpu(), beams.pos.cpu(), beams.valid.cpu()
    pvals, log10 = mannwhitney_pvalues(s2, pos, n, ties_c, params.alternative)
    p_search = torch.full_like(pvals, float("nan"))
    if plan is not None and plan.count:
        two_sided = log10 if params.alternative == "two-sided" else mannwhitney_pvalues(s2, pos, n, ties_c)[1]
        hits = torch.zeros_like(pos)
        for perm in plan:
            rs = region_rank_sums(ranks, space.regions, perm.to(ranks.device))
            null = _search(rs, space, params)
            t = mannwhitney_pvalues(null.s2.cpu(), null.pos.cpu(), n, ties_c)[1]
            t = t.masked_fill(~null.valid.cpu(), float("inf")).min(1).values  # [Db]: T of this permutation
            hits += t.unsqueeze(1) <= two_sided
        p_search = ((1 + hits).double() / (1 + plan.count)).masked_fill(~valid, float("nan"))
    del ranks
    hist = beams.hist.cpu().tolist()
    auc_l, pos_l, p_l, log_l, ps_l, ok = (
        t.tolist() for t in (auc_from_rank_sums(s2, pos, n), pos, pvals, log10, p_search, valid)
    )
    out = []
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
                )
            )
        out.append(exps)
    return out


def _search(region_sums: torch.Tensor, space: _Space, params: SearchParams) -> _Beams:
    """The beam search of a batch of neurons from their region rank sums [G, Db]: the final beams."""
    n, B, sign = space.n, params.B, params.sign
    s2_c = concept_rank_sums(region_sums, space.regions, space.method).t()  # [Db, K]
    total = n * (n + 1)
    atom_s2 = torch.cat([s2_c, total - s2_c], 1)  # [Db, 2K]
    atom_p = torch.cat([space.counts, n - space.counts])  # [2K]
    bounds = params.size_bounds(n)
    ok_atom = (atom_p >= bounds[0]) & (atom_p <= bounds[1])
    atom_score = torch.where(ok_atom, sign * auc_from_rank_sums(atom_s2, atom_p, n), _NEG_INF)  # admissible: no NaN
    db = region_sums.shape[1]

    def atoms_of(d_t, j_t):
        hist = torch.full((j_t.numel(), params.L), -1, dtype=torch.int64, device=j_t.device)
        hist[:, 0] = j_t
        return atom_s2[d_t, j_t], atom_p[j_t], hist, space.atom_words[j_t]

    win, _ = _select(_gather_dense(atom_score), atoms_of, db, space, params)
    beams = _Beams(db, B, params.L, space.regions.num_regions, region_sums.device)
    d_t, r_t = (win >= 0).nonzero().unbind(1)
    if d_t.numel():
        j_t = win[d_t, r_t]
        beams.hist[d_t, r_t, 0] = j_t
        beams.ntok[d_t, r_t] = 1
        beams.s2[d_t, r_t] = atom_s2[d_t, j_t]
        beams.pos[d_t, r_t] = atom_p[j_t]
        beams.mask[d_t, r_t] = space.atom_masks(j_t)
        beams.valid[d_t, r_t] = True
    ext = _extension_atoms(atom_s2, atom_p, space, params)
    for _length in range(2, params.L + 1):
        beams = _step(beams, region_sums, space, s2_c, ext, params, bounds)
    return beams


def sign_int(sign: float) -> int:
    return 1 if sign > 0 else -1


def _extension_atoms(atom_s2: torch.Tensor, atom_p: torch.Tensor, space: _Space, params: SearchParams):
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
    num_a = torch.where(defined, sign_int(params.sign) * (atom_s2 - p * (p + 1)), torch.zeros_like(p))
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


def _select(gather, candidates, db: int, space: _Space, params: SearchParams):
    """Each neuron's B best labels among scored candidates (columns of a score matrix or pool).

    Per neuron, every candidate whose float score reaches the 2B-th best is gathered, ties included
    (every candidate whose exact score reaches the 2B-th best exact score is then among them); the
    exact selection (ops.select_labels: exact AUC, length, canonical text, one per mask with distinct)
    picks the winners. Neurons left with fewer than B labels while unseen candidates remain widen the
    net (4x) and are selected again.

    Args:
        gather: gather(neurons, k) -> (d, cols, vals, gathered, valid): for the given neurons [T]
            (int64), every candidate column whose score reaches the neuron's k-th best (d, cols [M]
            int64, vals [M] float64), and per neuron the number gathered and the number of finite scores.
        candidates: candidates(d, cols) -> (s2, p, hist [M, L], words [M, W]) of those columns.
        db: neurons; space, params: the search's.

    Returns:
        (columns [Db, B] int64 best first, -1 padding; lengths [Db, B] int64).
    """
    B = params.B
    dev = space.counts.device
    win = torch.full((db, B), -1, dtype=torch.int64, device=dev)
    lens = torch.zeros(db, B, dtype=torch.int64, device=dev)
    todo = torch.arange(db, device=dev)
    k = 2 * B
    while todo.numel():
        d_t, cols, _vals, gathered, valid = gather(todo, k)
        s2, p, hist, words = candidates(d_t, cols)
        idx, ln = ops.select_labels(
            d_t, s2, p, hist, words if params.distinct else words[:, :0], space.atom_text, space.atom_offsets,
            space.n, params.sign, B, params.distinct, db,
        )  # fmt: skip
        got = idx[todo] >= 0
        if cols.numel():
            win[todo] = torch.where(got, cols[idx[todo].clamp(min=0)], -1)
        lens[todo] = ln[todo]
        short = got.sum(1) < B
        todo_mask = short & (gathered.to(dev) < valid.to(dev))
        # Widen past everything gathered so far: a tie group of equal masks can hold hundreds.
        k = max(4 * k, int(gathered.max()) + 2 * B) if bool(todo_mask.any()) else k
        todo = todo[todo_mask]
    return win, lens


def _gather_dense(score: torch.Tensor):
    """gather() for a dense [Db, C] score matrix (-inf: not a candidate)."""

    def gather(neurons, k):
        sub = score[neurons.to(score.device)]
        thr = torch.topk(sub, min(k, sub.shape[1]), dim=1).values[:, -1:].clamp(min=-torch.finfo(torch.float64).max)
        hit = sub >= thr
        rows, cols = hit.nonzero().unbind(1)
        return neurons.to(score.device)[rows], cols, sub[rows, cols], hit.sum(1), (sub > _NEG_INF).sum(1)

    return gather


def _step(beams: _Beams, region_sums, space: _Space, s2_c, ext, params: SearchParams, bounds) -> _Beams:
    n, k, B, sign = space.n, space.k, params.B, params.sign
    db = s2_c.shape[0]
    x, x_p, shift = space.beam_concept_sums(region_sums, beams.mask)  # [Db, B, K]
    conc_s = s2_c.contiguous()
    dev = x.device
    pool = PoolLayout(B, k)

    def gather(neurons, kk):
        nd = neurons.to(dev)
        whole = nd.numel() == db
        pick = (lambda t: t) if whole else (lambda t: t.index_select(0, nd))
        indptr, cols, vals, valid = ops.beam_step_select(
            pick(x),
            x_p if shift else pick(x_p),
            shift,
            pick(beams.s2),
            pick(beams.pos),
            pick(beams.valid),
            pick(conc_s),
            space.counts,
            pick(ext),
            n,
            bounds[0],
            bounds[1],
            sign,
            kk,
        )
        counts = indptr.diff()
        return torch.repeat_interleave(nd, counts), cols, vals, counts, valid

    def pool_sums(d_t, j_t):
        """(doubled rank sum, size) of pool columns j_t of neurons d_t, by inclusion-exclusion."""
        is_old, b, op, a = pool.decode_tensor(j_t)
        a = a.clamp(min=0)
        c, neg = a % k, a >= k
        xv = x[d_t, b, c]
        xs, xp = (xv >> shift, xv & (2**shift - 1)) if shift else (xv, x_p[d_t, b, c])
        sb, pb = beams.s2[d_t, b], beams.pos[d_t, b]
        sc, pc = s2_c[d_t, c], space.counts[c]
        total = n * (n + 1)
        is_or = op == 1
        s_new = torch.where(is_or, torch.where(neg, total - sc + xs, sb + sc - xs), torch.where(neg, sb - xs, xs))
        p_new = torch.where(is_or, torch.where(neg, n - pc + xp, pb + pc - xp), torch.where(neg, pb - xp, xp))
        return torch.where(is_old, sb, s_new), torch.where(is_old, pb, p_new)

    def candidates(d_t, j_t):
        is_old, b, op, a = pool.decode_tensor(j_t)
        s2, p = pool_sums(d_t, j_t)
        # History: the beam formula's, plus (op, atom) for a new candidate.
        hist = beams.hist[d_t, b].clone()
        nt = beams.ntok[d_t, b]
        new = (~is_old).nonzero().flatten()
        hist[new, nt[new]] = (op[new] + 1) * (2 * k) + a[new]
        bw, aw = beams.words[d_t, b], space.atom_words[a.clamp(min=0)]
        grown = torch.where((op == 1).unsqueeze(1), bw | aw, bw & aw)
        words = torch.where(is_old.unsqueeze(1), bw, grown)
        return s2, p, hist, words

    win, _ = _select(gather, candidates, db, space, params)
    out = _Beams(db, B, params.L, beams.mask.shape[2], dev)
    d_t, r_t = (win >= 0).nonzero().unbind(1)
    if d_t.numel():
        j_t = win[d_t, r_t]
        s_new, p_new, hist, _ = candidates(d_t, j_t)
        is_old, b, op, a = pool.decode_tensor(j_t)
        out.hist[d_t, r_t] = hist
        out.ntok[d_t, r_t] = beams.ntok[d_t, b] + (~is_old).long()
        out.s2[d_t, r_t] = s_new
        out.pos[d_t, r_t] = p_new
        out.valid[d_t, r_t] = True
        base = beams.mask[d_t, b]  # [E, G]
        am = space.atom_masks(a.clamp(min=0))
        grown = torch.where((op == 1).unsqueeze(1), base | am, base & am)
        out.mask[d_t, r_t] = torch.where(is_old.unsqueeze(1), base, grown)
    return out
