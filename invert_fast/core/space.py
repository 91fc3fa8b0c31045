"""The region space of a concept set, the beams of a search as tensors, and the one exact selection
that the beam search and the exact search share.

Every formula is a union of regions (groups of samples sharing a concept vector), so a formula is
kept as its region mask, its doubled rank sum and size per neuron, and its extension history (the
first atom, then op * 2K + atom per join; csrc/formula_texts.h). Candidates are scored by fused
kernels that keep those reaching each neuron's k-th best score; select_winners then picks the B
winners exactly (ops.select_labels: exact AUC, length, canonical text, one label per mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import ops
from ..ops import PoolLayout
from .auroc import caches_membership, choose_method, concept_rank_sums
from .bits import num_words, popcount, unpack_bits
from .concepts import ConceptSet
from .formula import Formula
from .order import packed_rows
from .params import SearchParams

NEG_INF = float("-inf")
AND, OR = 1, 2  # history op codes (0: the first atom)


@dataclass(frozen=True)
class Grammar:
    """What the beam search may build and keep beyond SearchParams: INVERT's (the default) or Mu & Andreas'.

    Attributes:
        first_negated: ~c may start a formula (INVERT: yes; Mu & Andreas: formulas start with a concept).
        or_negated: b | ~c is a candidate (INVERT: yes; Mu & Andreas' operators are OR, AND, AND NOT).
        keep_unchanged: a candidate whose mask equals its beam formula's stays in the pool (INVERT drops
            it; Mu & Andreas keep b & c where c covers b, as a longer formula of equal score).
        all_sizes: every mask size is admissible, 0 <= P <= N (else SearchParams.size_bounds).
        every_atom: every atom extends, also those of empty or full concepts (else only 0 < P < N).
        penalty: subtracted from the score once per atom beyond the first, compared exactly (>= 0).
    """

    first_negated: bool = True
    or_negated: bool = True
    keep_unchanged: bool = False
    all_sizes: bool = False
    every_atom: bool = False
    penalty: float = 0.0

    @property
    def flags(self) -> int:
        """beam_step_select's flags (csrc/beam_step_select.h)."""
        return (ops.KEEP_UNCHANGED if self.keep_unchanged else 0) | (0 if self.or_negated else ops.NO_NEGATED_OR)


INVERT = Grammar()
MU_ANDREAS = Grammar(first_negated=False, or_negated=False, keep_unchanged=True, all_sizes=True, every_atom=True)


class RegionSpace:
    """Region-space view of a concept set on one device, shared by all neuron batches."""

    def __init__(self, concepts: ConceptSet, method: str, max_memory: int | None = None):
        """Args: max_memory: the search's budget in bytes (None: no limit); the dense product keeps its
        float64 [K, G] membership only within a quarter of it (see auroc.concept_rank_sums)."""
        self.regions = concepts.regions()
        self.method = choose_method(self.regions, method)
        self.n = concepts.n_samples
        self.k = len(concepts)
        self.member_bytes = None if max_memory is None else max_memory // 4
        self.counts = concepts.counts  # [K]
        self.member = self.regions.membership_bool  # [K, G]
        self._member_t = None
        self._region_csr = None
        n = self.n
        self.shift = max(1, n.bit_length())  # 2^shift > N: counts fit below the rank sum
        names = concepts.names
        self.atoms = [Formula.atom(s) for s in names] + [Formula.atom(s, True) for s in names]  # [2K]
        texts = [str(a).encode("utf-8") for a in self.atoms]
        self.atom_text = torch.tensor(list(b"".join(texts)), dtype=torch.uint8)  # on the CPU: for select_labels
        self.atom_offsets = torch.cumsum(torch.tensor([0] + [len(t) for t in texts]), 0)
        order = sorted(range(2 * self.k), key=lambda a: str(self.atoms[a]))
        self.atom_text_order = torch.tensor(order, dtype=torch.long, device=concepts.device)
        # Packed region masks of the 2K atoms (exact mask identity for distinct labels).
        atoms = torch.arange(2 * self.k, device=concepts.device)
        # Packed in blocks of atoms: the [2K, G] bool masks never exist at once.
        self.atom_words = torch.cat([packed_rows(self.atom_masks(atoms[a : a + 64])) for a in range(0, 2 * self.k, 64)])
        self._formulas: dict[tuple, Formula] = {}
        self._prefixes = None

    @property
    def member_t(self) -> torch.Tensor:
        """[G, K] bool membership by region (masked_row_sums, region_csr); built on first use, as the
        dense concepts of many regions may never need it."""
        if self._member_t is None:
            self._member_t = self.member.t().contiguous()
        return self._member_t

    @property
    def fixed_bytes(self) -> int:
        """Memory this space holds for the whole search (the bool memberships both ways, the region
        maps, and the float64 membership where the dense product may cache it)."""
        k, g, n = self.k, self.regions.num_regions, self.n
        dense = 8 * k * g if self.method == "dense" and caches_membership(self.regions, self.member_bytes) else 0
        return 2 * k * g + 8 * self.regions.concept_regions.numel() + 40 * n + 8 * g + dense

    @property
    def region_row_cost(self) -> int:
        """Cost of adding one region's row of the region -> concept table, in the units of K additions:
        K for the dense bool row (vectorized), 11 per concept the region holds for its CSR list
        (scattered; ops.masked_csr_sums): measured 1.8x faster than the dense row at 15 of K = 300 concepts
        per region on 2 Xeon cores (token concepts, benchmarks/bench_sparse.py)."""
        per_region = self.regions.concept_regions.numel() / max(1, self.regions.num_regions)
        return min(self.k, max(1, round(11 * per_region)))

    def region_csr(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Region -> concepts CSR ([G + 1] indptr, [nnz] concepts), for the exact search's pair sums; cached."""
        if self._region_csr is None:
            g = self.regions.num_regions
            nz = self.member_t.nonzero()  # [nnz, 2] (region, concept), by region
            indptr = torch.zeros(g + 1, dtype=torch.int64, device=nz.device)
            indptr[1:] = torch.cumsum(torch.bincount(nz[:, 0], minlength=g), 0)
            self._region_csr = (indptr, nz[:, 1].clone())  # the clone frees the [nnz, 2] pairs
        return self._region_csr

    def concept_sums(self, weights: torch.Tensor, per_sample_max: int | None = None) -> torch.Tensor:
        """[K, C] int64 sums of weights [G, C] over each concept's regions (auroc.concept_rank_sums, in
        this space's method and memory)."""
        return concept_rank_sums(weights, self.regions, self.method, per_sample_max, self.member_bytes)

    def prefixes(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every formula of two atoms whose mask is new: not empty, not full, not an atom's mask (a formula
        extending such a prefix has the mask of a shorter one). Neuron independent; cached.

        Returns:
            (hist [P, 3] int64 histories: atom a, then op * 2K + atom c, then -1; masks [P, G] bool;
            words [P, ceil(G / 64)] int64, the masks packed).
        """
        if self._prefixes is None:
            k2 = 2 * self.k
            dev = self.counts.device
            a, c = torch.triu_indices(k2, k2, 1, device=dev)
            ma, mc = self.atom_masks(a), self.atom_masks(c)
            hist = torch.cat(
                [
                    torch.stack([a, AND * k2 + c, torch.full_like(a, -1)], 1),
                    torch.stack([a, OR * k2 + c, torch.full_like(a, -1)], 1),
                ]
            )
            masks = torch.cat([ma & mc, ma | mc])
            cnt = masks.sum(1)
            g = masks.shape[1]
            words = packed_rows(masks)
            known = {tuple(w) for w in self.atom_words.tolist()}
            new = torch.tensor([tuple(w) not in known for w in words.tolist()], dtype=torch.bool, device=dev)
            keep = new & (cnt > 0) & (cnt < g)
            self._prefixes = (hist[keep], masks[keep], words[keep])
        return self._prefixes

    def formula(self, hist: list[int]) -> Formula:
        """The Formula of an extension history (cached: labels repeat across neurons)."""
        key = tuple(hist)
        f = self._formulas.get(key)
        if f is None:
            k2 = 2 * self.k
            f = self.atoms[hist[0]]
            for t in hist[1:]:
                op, a = divmod(t, k2)
                f = f.joined("and" if op == AND else "or", self.atoms[a])
            self._formulas[key] = f
        return f

    def atom_masks(self, atoms: torch.Tensor) -> torch.Tensor:
        """[E, G] region masks of atoms [E] (a < K: concept a; a >= K: NOT concept a - K)."""
        return self.member[atoms % self.k] ^ (atoms >= self.k).unsqueeze(1)

    def masked_sums(self, weights: torch.Tensor, words: torch.Tensor, per_sample_max: int, path=None) -> torch.Tensor:
        """sum over regions of weights[g, d] * mask[d, b, g] * member[c, g], for packed masks `words`.

        Two ways, whichever touches less: concept-major (every concept's regions, for all beams at once:
        a sparse gather or an exact float64 GEMM over the unpacked masks), or beam-major (each beam
        formula's own regions, or those outside it subtracted from the total when that side is smaller:
        ops.masked_row_sums walks the set bits of the packed masks, one weighted row of the region ->
        concept table per region, or ops.masked_csr_sums where regions hold few concepts, each region
        adding to its own concepts; cheap when formulas cover few regions, e.g. ImageNet classes).

        Args:
            weights: [G, Db] int64; words: [Db, B, ceil(G / 64)] int64 packed region masks (padding 0).
            path: None (cheaper one), "beam" or "concept" (for tests).

        Returns:
            [Db, B, K] int64.
        """
        db, b, _w = words.shape
        g = self.regions.num_regions
        cnt = popcount(words)  # [Db, B] regions per mask
        outside = cnt * 2 > g
        side = torch.where(outside, g - cnt, cnt)
        beam_major = int(side.sum()) * self.region_row_cost
        if self.method == "sparse":
            concept_major = self.regions.concept_regions.numel() * db * b
        else:  # a GEMM multiply-add costs ~1/8 of a gathered addition (RESULTS.md)
            concept_major = self.k * g * db * b // 8
        if path == "beam" or (path is None and beam_major < concept_major):
            if self.region_row_cost < self.k:  # few concepts per region: each adds to its own concepts
                out = ops.masked_csr_sums(words, outside, weights, *self.region_csr(), self.k)
            else:
                out = ops.masked_row_sums(words, outside, weights, self.member_t)
            if bool(outside.any()):
                total = self.concept_sums(weights, per_sample_max).t()  # [Db, K]
                out = torch.where(outside.unsqueeze(-1), total.unsqueeze(1) - out, out)
            return out
        mask = unpack_bits(words, g)  # [Db, B, G]
        if self.method == "sparse":
            vals = (weights.t().unsqueeze(1) * mask).reshape(db * b, g).t().contiguous()  # [G, Db*B]
        else:  # the GEMM reads a transposed view; weights (< 2^53) are exact in float64
            vals = (weights.t().unsqueeze(1).double() * mask).view(db * b, g).t()
        out = self.concept_sums(vals, per_sample_max)  # [K, Db*B]
        return out.t().reshape(db, b, self.k)

    def packs(self, bounds) -> bool:
        """Whether (statistic, count) pack in one integer, statistic * 2^shift + count, for a statistic whose
        sums are bounded by bounds = (per sample, per mask) (an objective's bounds(n)): the total stays exact
        in int64 for the sparse gather, in float64 (2^53) for the dense product."""
        limit = 2**63 if self.method == "sparse" else 2**53
        return bounds[1] * 2**self.shift + self.n < limit

    def beam_concept_sums(self, region_sums: torch.Tensor, words: torch.Tensor, bounds):
        """(statistic, size) of every beam formula (packed masks words [Db, B, W]) AND every concept, as
        (x, x_p, shift); bounds: the statistic's, (per sample, per mask) (an objective's bounds(n)).

        Packed (shift > 0): x [Db, B, K] int64 = (statistic << shift) + size, x_p empty.
        Otherwise: x the statistic's sums and x_p the sizes, both [Db, B, K] int64, shift 0.
        """
        per_sample = bounds[0]
        sizes = self.regions.sizes.unsqueeze(1)
        if self.packs(bounds):
            w = region_sums.long() * 2**self.shift + sizes
            x = self.masked_sums(w, words, per_sample * 2**self.shift + 1)
            return x, x.new_empty(0), self.shift
        s = self.masked_sums(region_sums.long(), words, per_sample)
        p = self.masked_sums(sizes.expand_as(region_sums).contiguous(), words, 1)
        return s, p, 0


class Beams:
    """The current beams of a batch of neurons, as tensors.

    Attributes:
        hist: [Db, B, L] int64 extension histories (-1 padding); ntok: [Db, B] tokens used.
        s2, pos: [Db, B] int64 statistic (AUROC: doubled rank sum) and size of each beam formula's mask.
        length: [Db, B] int64 canonical length (atoms) of each beam formula.
        words: [Db, B, ceil(G / 64)] int64 bit-packed region masks (padding bits 0);
        valid: [Db, B] bool (False: empty slot).
    """

    def __init__(self, db: int, B: int, L: int, g: int, dev):
        z = torch.zeros(db, B, dtype=torch.int64, device=dev)
        self.g = g
        self.hist = torch.full((db, B, L), -1, dtype=torch.int64, device=dev)
        self.ntok = z.clone()
        self.length = z.clone()
        self.s2, self.pos = z, z.clone()
        self.words = torch.zeros(db, B, num_words(g), dtype=torch.int64, device=dev)
        self.valid = torch.zeros(db, B, dtype=torch.bool, device=dev)

    @classmethod
    def of_atoms(cls, win: torch.Tensor, atom_s2: torch.Tensor, atom_p: torch.Tensor, space, L: int) -> Beams:
        """Beams of single atoms: win [Db, B] atom indices into the 2K atoms (-1: empty slot), atom_s2
        [Db, 2K] and atom_p [2K] their doubled rank sums and sizes."""
        db, b = win.shape
        beams = cls(db, b, L, space.regions.num_regions, atom_s2.device)
        d_t, r_t = (win >= 0).nonzero().unbind(1)
        if d_t.numel():
            j_t = win[d_t, r_t]
            beams.hist[d_t, r_t, 0] = j_t
            beams.ntok[d_t, r_t] = 1
            beams.length[d_t, r_t] = 1
            beams.s2[d_t, r_t] = atom_s2[d_t, j_t]
            beams.pos[d_t, r_t] = atom_p[j_t]
            beams.words[d_t, r_t] = space.atom_words[j_t]
            beams.valid[d_t, r_t] = True
        return beams


def sign_int(sign: float) -> int:
    return 1 if sign > 0 else -1


def select_winners(
    gather, choose, db: int, space: RegionSpace, params: SearchParams, out: int | None = None, first: int = 1
):
    """Each neuron's B best labels among scored candidates (columns of a score matrix or pool).

    Per neuron, every candidate whose float score reaches the k-th best distinct float score is gathered
    (so the candidates of the k best distinct exact scores are among them, and at least k distinct masks
    and texts when the pool has them); the exact selection (ops.select_step / select_labels: exact AUC, length, canonical text, one per mask with
    distinct) picks the winners. Neurons left with fewer than B labels while unseen candidates remain
    widen the net past everything gathered and are selected again.

    Args:
        gather: gather(neurons, k) -> (d, cols, gathered, valid, s2, p): for the given neurons [T] (int64),
            every candidate column whose score reaches the neuron's k-th best (d, cols [M] int64), per
            neuron the number gathered and the number of finite scores, and the columns' sums [M].
        choose: choose(d, cols, s2, p, B) -> (winners [Db, B] indices into the M candidates, lengths).
        db: neurons; space, params: the search's; out: labels per neuron (default params.B).
        first: the first gather takes the first * out best distinct scores.

    Returns:
        (columns, s2, p, lengths), each [Db, B] int64, best first, -1 / 0 padding.
    """
    B = out if out is not None else params.B
    dev = space.counts.device
    win = torch.full((db, B), -1, dtype=torch.int64, device=dev)
    win_s, win_p, lens = (torch.zeros(db, B, dtype=torch.int64, device=dev) for _ in range(3))
    todo = torch.arange(db, device=dev)
    k = first * B
    while todo.numel():
        d_t, cols, gathered, valid, s2, p = gather(todo, k)
        idx, ln = choose(d_t, cols, s2, p, B)
        got = idx[todo] >= 0
        if cols.numel():
            pick = idx[todo].clamp(min=0)
            win[todo] = torch.where(got, cols[pick], -1)
            win_s[todo], win_p[todo] = torch.where(got, s2[pick], 0), torch.where(got, p[pick], 0)
        lens[todo] = ln[todo]
        short = got.sum(1) < B
        todo_mask = short & (gathered.to(dev) < valid.to(dev))
        # Widen past everything gathered so far: a tie group of equal masks can hold hundreds.
        k = max(4 * k, int(gathered.max()) + 2 * B) if bool(todo_mask.any()) else k
        todo = todo[todo_mask]
    return win, win_s, win_p, lens


def step_chooser(space: RegionSpace, params: SearchParams, hist, ntok, words, db: int, totals=None, penalty=0.0):
    """choose() for pool columns of beams with histories hist [Db or 1, Bb, T], ntok, words (ops.select_step);
    totals: [Db] the neurons' statistic totals (None: AUROC's); penalty: per atom beyond the first."""
    code = params.scorer.code

    def choose(d_t, cols, s2, p, B):
        return ops.select_step(
            d_t, cols, s2, p, hist, ntok, words, space.atom_words, space.atom_text, space.atom_offsets,
            space.k, space.n, params.sign, B, params.distinct, db, totals, code, penalty,
        )  # fmt: skip

    return choose


def atom_gather(score: torch.Tensor, atom_s2: torch.Tensor, atom_p: torch.Tensor):
    """gather() over the 2K atoms: score [Db, 2K] (-inf: not a candidate), atom sums [Db, 2K] and sizes [2K]."""

    def gather(neurons, k):
        nd = neurons.to(score.device)
        sub = score[nd]
        hit = sub >= kth_distinct(sub, k)
        rows, cols = hit.nonzero().unbind(1)
        d = nd[rows]
        return d, cols, hit.sum(1), (sub > NEG_INF).sum(1), atom_s2[d, cols], atom_p[cols]

    return gather


def kth_distinct(score: torch.Tensor, k: int) -> torch.Tensor:
    """[D, 1]: each row's k-th best distinct finite value of score [D, C], or -max where a row has fewer
    (as the step kernels' thresholds: gathering every column at or above it yields k distinct masks).
    The best 4k values of each row are looked at first; rows whose ties hide the k-th distinct value
    there are sorted whole."""

    def from_sorted(ordered):
        new = torch.ones_like(ordered, dtype=torch.bool)
        new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        new &= ordered > NEG_INF
        hit = new & (torch.cumsum(new.long(), 1) == k)
        return ordered.gather(1, hit.int().argmax(1, keepdim=True)), hit.any(1, keepdim=True)

    c = score.shape[1]
    head = torch.topk(score, min(c, 4 * k), dim=1).values  # sorted, descending
    thr, found = from_sorted(head)
    # Not found in the head: either the row has fewer than k distinct values (its head ends at -inf or
    # is the whole row) or ties fill the head; only the latter need the whole row.
    more = ~found.squeeze(1) & (head[:, -1] > NEG_INF) & (head.shape[1] < c)
    if bool(more.any()):
        t2, f2 = from_sorted(torch.sort(score[more], dim=1, descending=True).values)
        thr[more], found[more] = t2, f2
    return torch.where(found, thr, torch.full_like(thr, -torch.finfo(torch.float64).max))


def atom_chooser(space: RegionSpace, params: SearchParams, db: int, totals=None):
    """choose() for atom columns (histories of one token; masks the atoms'); totals as step_chooser."""
    code = params.scorer.code

    def choose(d_t, cols, s2, p, B):
        hist = torch.full((cols.numel(), params.L), -1, dtype=torch.int64, device=cols.device)
        hist[:, 0] = cols
        words = space.atom_words[cols] if params.distinct else space.atom_words[cols][:, :0]
        return ops.select_labels(
            d_t, s2, p, hist, words, space.atom_text, space.atom_offsets, space.n, params.sign, B, params.distinct, db,
            totals, code,
        )  # fmt: skip

    return choose


def extend(
    beams: Beams,
    x,
    x_p,
    shift,
    space: RegionSpace,
    s2_c,
    ext,
    params: SearchParams,
    bounds,
    out=None,
    totals=None,
    grammar: Grammar = INVERT,
) -> Beams:
    """The best `out` (default B) formulas of the pool: every beam formula, and every beam formula joined
    with every allowed atom by AND and OR (candidates not admissible or leaving the beam's mask unchanged
    are dropped). Used by each step of the beam search and by the exact search (beams = all atoms, or
    all formulas of two atoms).

    Args:
        beams: the current formulas, [Db, Bb] slots; x, x_p, shift: (rank sum, size) of every beam
            formula AND every concept (RegionSpace.beam_concept_sums); s2_c: [Db, K] concept statistics;
            ext: [Db, 2K] bool atoms allowed to extend; bounds: admissible sizes (p_lo, p_hi).
            totals: [Db] int64 the neurons' statistic totals (None: AUROC's N (N + 1)); the objective is
            params.scorer. grammar: INVERT's, or Mu & Andreas' (its flags and length penalty).

    Returns:
        Beams of `out` slots (histories, sums, masks of the winners).
    """
    n, k, sign = space.n, space.k, params.sign
    B = out if out is not None else params.B
    db, bb = s2_c.shape[0], beams.s2.shape[1]
    conc_s = s2_c.contiguous()
    dev = x.device
    pool = PoolLayout(bb, k)
    code = params.scorer.code

    def gather(neurons, kk):
        nd = neurons.to(dev)
        whole = nd.numel() == db
        pick = (lambda t: t) if whole else (lambda t: t.index_select(0, nd))
        indptr, cols, _vals, valid, s2, p = ops.beam_step_select(
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
            None if totals is None else pick(totals),
            code,
            pick(beams.length) if grammar.penalty > 0 else None,
            grammar.penalty,
            grammar.flags,
        )
        counts = indptr.diff()
        return torch.repeat_interleave(nd, counts), cols, counts, valid, s2, p

    choose = step_chooser(space, params, beams.hist, beams.ntok, beams.words, db, totals, grammar.penalty)
    win, win_s, win_p, lens = select_winners(gather, choose, db, space, params, B)
    out = Beams(db, B, beams.hist.shape[2], beams.g, dev)
    d_t, r_t = (win >= 0).nonzero().unbind(1)
    if d_t.numel():
        j_t = win[d_t, r_t]
        is_old, b, op, a = pool.decode_tensor(j_t)
        a = a.clamp(min=0)
        hist = beams.hist[d_t, b].clone()  # the beam's history, plus (op, atom) for a new formula
        nt = beams.ntok[d_t, b]
        new = (~is_old).nonzero().flatten()
        hist[new, nt[new]] = (op[new] + 1) * (2 * k) + a[new]
        out.hist[d_t, r_t] = hist
        out.ntok[d_t, r_t] = nt + (~is_old).long()
        out.length[d_t, r_t] = lens[d_t, r_t]
        out.s2[d_t, r_t] = win_s[d_t, r_t]
        out.pos[d_t, r_t] = win_p[d_t, r_t]
        out.valid[d_t, r_t] = True
        base = beams.words[d_t, b]  # [E, W]
        am = space.atom_words[a]
        grown = torch.where((op == 1).unsqueeze(1), base | am, base & am)
        out.words[d_t, r_t] = torch.where(is_old.unsqueeze(1), base, grown)
    return out
