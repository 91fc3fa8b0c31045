"""Compositional explanations (Mu & Andreas 2020): beam search over formulas scored by IoU on pixel masks.

Each unit's mask is Network Dissection's (maps upsampled, > the top-quantile threshold). A formula
grows one concept at a time by OR, AND or AND NOT; the score is the IoU of the unit's mask with the
formula's pixel mask, minus `length_penalty` per extra concept. The beam search is INVERT's
(search.py) with IoU for AUROC: start from the best `beam` concepts, extend every beam formula with
every concept, keep the best `beam` of old and new, ties broken by (shorter, text order).

The counts come from inclusion-exclusion, as in INVERT: for a beam formula b and a concept c,
|M & (b | c)| = |M & b| + |M & c| - |M & b & c| and |b | c| = |b| + |c| - |b & c| (AND, AND NOT
alike), so one step is two AND + popcount tallies (unit & beam vs concepts, beam vs concepts).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from ..core.bits import popcount
from ..core.formula import Formula
from ..ops import and_popcount
from .netdissect import COMPAT, as_maps, check_masks, iter_unit_words, netdissect_level, resolve_thresholds
from .pixel_masks import PixelMasks

OPS = ("or", "and", "and not")


@dataclass(frozen=True)
class IoULabel:
    """A formula and its pixel overlap with one unit's masks, summed over images.

    Attributes:
        formula: the Formula; intersection, union: pixel counts over all images (ints);
        length_penalty: subtracted per atom beyond the first (Mu & Andreas' length penalty).

    Example:
        >>> lab = compositional_explain(maps, masks, length=3)[0][0]   # unit 0's best formula
        >>> str(lab.formula), lab.iou
    """

    formula: Formula
    intersection: int
    union: int
    length_penalty: float = 0.0

    @property
    def iou(self) -> float:
        return self.intersection / self.union if self.union else 0.0

    @property
    def score(self) -> Fraction:
        """IoU - length_penalty * (length - 1), exact (the penalty as the float it was given)."""
        iou = Fraction(self.intersection, self.union) if self.union else Fraction(0)
        return iou - Fraction(self.length_penalty) * (self.formula.length - 1)

    def key(self):
        """Sort key: best score first, then shorter, then text order."""
        return (-self.score, self.formula.length, str(self.formula))


def compositional_explain(
    maps,
    masks: PixelMasks,
    *,
    length: int = 3,
    beam: int = 5,
    length_penalty: float = 0.0,
    quantile: float = 0.005,
    thresholds=None,
    max_memory: int = 2**28,
    device=None,
    compat: str = "invert_fast",
) -> list[list[IoULabel]]:
    """Compositional explanation of every unit of a layer.

    Args:
        maps: [N, D, h, w] activation maps (tensor, array or memory-mapped .npy).
        masks: PixelMasks of the N images (H x W), or plain [N, K, H, W] 0/1 tensors / arrays.
        length: maximum formula length (concepts), >= 1.
        beam: beam size, >= 1.
        length_penalty: subtracted from the IoU once per concept beyond the first (0: plain IoU).
        quantile, thresholds: the units' masks as in network_dissection.
        max_memory: bytes of maps, unit masks and beam masks held at a time (units run in chunks).
        device: where to compute (default: the maps' device).
        compat: the units' masks by this package's definition ("invert_fast": threshold at level
            1 - quantile) or NetDissect-Lite's ("netdissect-lite": at netdissect_level(quantile), as
            Mu & Andreas' code, built on NetDissect-Lite, thresholds). The rest of network_dissection's
            netdissect-lite arithmetic does not apply: a formula mixes categories, so its union is the
            plain one (all of the unit's pixels), as in their code, and there is no detector cut.

    Returns:
        per unit, its final beam as IoULabel best first (the first is the unit's explanation).

    Example:
        >>> labels = compositional_explain(maps, masks, length=3, beam=5)
        >>> str(labels[0][0].formula), labels[0][0].iou        # e.g. ('(hole | edge) & ~"top half"', 0.21)
    """
    x = as_maps(maps)
    masks = check_masks(x, masks)
    if masks.n_pixels == 1:
        raise ValueError("masks: compositional explanations need pixel masks, got 1 x 1 image-level labels")
    for name, v in (("length", length), ("beam", beam)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    if not isinstance(length_penalty, float | int) or not length_penalty >= 0:
        raise ValueError(f"length_penalty: expected a number >= 0, got {length_penalty!r}")
    device = torch.device(device) if device is not None else x.device
    n, d = x.shape[:2]
    if compat not in COMPAT:
        raise ValueError(f"compat: expected one of {COMPAT}, got {compat!r}")
    level = netdissect_level(quantile) if compat == "netdissect-lite" else None
    thresholds = resolve_thresholds(x, thresholds, quantile, max_memory, device, level)
    search = _Search(masks.to(device), float(length_penalty), beam)
    # Units per chunk: their masks plus one beam mask per unit and beam slot fit in max_memory.
    per_unit = n * masks.words.shape[2] * 8 * (2 + beam)
    units = max(1, min(d, max_memory // max(per_unit, 1)))
    out: list[list[IoULabel]] = []
    for d0 in range(0, d, units):
        u = _unit_masks(x[:, d0 : d0 + units], thresholds[d0 : d0 + units], masks, max_memory, device, d0)
        out.extend(search.run(u, length))
    return out


def _unit_masks(x, thresholds, masks: PixelMasks, max_memory: int, device, d0: int = 0) -> torch.Tensor:
    """[N, Dc, W] packed masks of a chunk of units (the layer's d0..) over all images."""
    return torch.cat([u for _, u in iter_unit_words(x, thresholds, masks, max_memory, device, d0)], 0)


class _Search:
    def __init__(self, masks: PixelMasks, penalty: float, beam: int):
        self.masks, self.penalty, self.B = masks, penalty, beam
        self.c = masks.words  # [N, K, W]
        self.c_px = masks.pixels()  # [K]
        self.atoms = [Formula.atom(s) for s in masks.names]

    def label(self, f: Formula, inter: int, union: int) -> IoULabel:
        return IoULabel(f, int(inter), int(union), self.penalty)

    def run(self, u: torch.Tensor, length: int) -> list[list[IoULabel]]:
        """Beam search for the units whose masks are u [N, Dc, W]."""
        dc = u.shape[1]
        u_px = popcount(u).sum(0)  # [Dc]
        inter_c = and_popcount(u, self.c)  # [Dc, K] |M & c|
        union_c = u_px[:, None] + self.c_px[None, :] - inter_c
        words: dict[Formula, torch.Tensor] = {a: self.c[:, k] for k, a in enumerate(self.atoms)}
        sizes: dict[Formula, int] = {a: int(self.c_px[k]) for k, a in enumerate(self.atoms)}
        ic, uc = inter_c.tolist(), union_c.tolist()
        beams = []
        for j in range(dc):
            cands = [self.label(a, ic[j][k], uc[j][k]) for k, a in enumerate(self.atoms)]
            beams.append(self._best(cands))
        for _ in range(2, length + 1):
            beams = self._step(u, u_px, inter_c, beams, words, sizes)
        return beams

    def _best(self, candidates: list[IoULabel]) -> list[IoULabel]:
        """The B best distinct formulas by IoULabel.key."""
        seen, out = set(), []
        for lab in sorted(candidates, key=IoULabel.key):
            if lab.formula not in seen:
                seen.add(lab.formula)
                out.append(lab)
                if len(out) == self.B:
                    break
        return out

    def _step(self, u, u_px, inter_c, beams, words, sizes):
        formulas = sorted({lab.formula for b in beams for lab in b}, key=str)
        g_of = {f: i for i, f in enumerate(formulas)}
        fw = torch.stack([words[f] for f in formulas], 1)  # [N, G, W]
        s_fc = and_popcount(fw, self.c)  # [G, K] |b & c|
        f_px = torch.tensor([sizes[f] for f in formulas], dtype=torch.int64, device=u.device)
        pairs = [(j, g_of[lab.formula], lab) for j, b in enumerate(beams) for lab in b]
        pj = torch.tensor([p[0] for p in pairs], dtype=torch.int64, device=u.device)
        pg = torch.tensor([p[1] for p in pairs], dtype=torch.int64, device=u.device)
        # |M & b & c| for every (unit, beam formula) pair, 256 pairs of masks at a time.
        t = torch.cat(
            [and_popcount(u[:, pj[i : i + 256]] & fw[:, pg[i : i + 256]], self.c) for i in range(0, len(pairs), 256)]
        )
        i_b = torch.tensor([p[2].intersection for p in pairs], dtype=torch.int64, device=u.device)[:, None]
        s = s_fc[pg]  # [P, K]
        fp, cp, ic = f_px[pg][:, None], self.c_px[None, :], inter_c[pj]
        inter = torch.stack([i_b + ic - t, t, i_b - t], 2)  # [P, K, 3] for OR, AND, AND NOT
        size = torch.stack([fp + cp - s, s, fp - s], 2)
        union = u_px[pj][:, None, None] + size - inter
        iou = torch.where(union > 0, inter.double() / union.double().clamp(min=1), 0.0)
        lens = torch.tensor([p[2].formula.length + 1 for p in pairs], dtype=torch.float64, device=u.device)
        # The per-unit selection below reads single entries: one copy to the host, not one per read.
        score = (iou - self.penalty * (lens[:, None, None] - 1)).cpu()
        inter, union = inter.cpu(), union.cpu()
        new_beams = []
        by_unit: dict[int, list[int]] = {}
        for r, p in enumerate(pairs):
            by_unit.setdefault(p[0], []).append(r)
        for j, old in enumerate(beams):
            rows = by_unit.get(j, [])
            if not rows:
                new_beams.append(old)
                continue
            sc = score[rows].flatten()
            # Only candidates within reach of the B-th best float score are built and compared exactly.
            pool = torch.cat([sc, torch.tensor([float(o.score) for o in old], dtype=sc.dtype)])
            # Equal formulas reached from different beams score alike: the B-th best *distinct* value bounds
            # the B-th best distinct formula from below.
            values = torch.unique(pool)
            floor = float(values[max(0, values.numel() - self.B)])
            near = (sc >= floor - 1e-9).nonzero().flatten().tolist()
            kk, nops = self.c.shape[1], len(OPS)
            cands = list(old)
            inter_l, union_l = inter[rows].flatten().tolist(), union[rows].flatten().tolist()
            for idx in near:
                r, rest = divmod(idx, kk * nops)
                k, op = divmod(rest, nops)
                base = pairs[rows[r]][2].formula
                f = _combine(base, self.atoms[k], op)
                if f == base:
                    continue  # e.g. (a | c) | c: the beam formula itself, already in the pool
                cands.append(self.label(f, inter_l[idx], union_l[idx]))
            best = self._best(cands)
            for lab in best:
                if lab.formula not in words:
                    words[lab.formula] = self.masks.formula_words(lab.formula)
                    sizes[lab.formula] = int(popcount(words[lab.formula]).sum())
            new_beams.append(best)
        return new_beams


def _combine(base: Formula, atom: Formula, op: int) -> Formula:
    if op == 0:
        return base | atom
    if op == 1:
        return base & atom
    return base & ~atom
