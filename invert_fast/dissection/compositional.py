"""Compositional explanations (Mu & Andreas 2020): beam search over formulas scored by IoU on pixel masks.

Each unit's mask is Network Dissection's (maps upsampled, > the top-quantile threshold). A formula
grows one concept at a time by OR, AND or AND NOT; the score is the IoU of the unit's mask with the
formula's pixel mask, minus `length_penalty` per extra concept. Start from the best `beam` concepts,
extend every beam formula with every concept, keep the best `beam` of old and new (equal formulas once),
ties broken by (shorter, text order).

The search is INVERT's, the one in core/search.py (`beam_search`), with the IoU objective
(core/objectives.py) and Mu & Andreas' grammar (core/space.MU_ANDREAS: formulas start with a concept, no
OR NOT, candidates that leave their beam's mask unchanged stay, every mask size counts): the pixels of all
images are the samples, grouped into regions of pixels that share their concepts, and a unit's statistic
is how many of its mask's pixels each region holds. This module keeps what is NetDissect's: thresholds,
upsampled unit masks and the pixel masks of the concepts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from ..core.bits import unpack_bits
from ..core.formula import Formula
from ..core.params import SearchParams
from ..core.search import beam_search
from ..core.space import MU_ANDREAS, RegionSpace
from .netdissect import COMPAT, as_maps, check_masks, iter_unit_words, netdissect_level, resolve_thresholds
from .pixel_masks import PixelMasks


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
        length_penalty: subtracted from the IoU once per concept beyond the first (0: plain IoU); scores
            are compared exactly (the penalty as the float it was given).
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
    if not isinstance(length_penalty, float | int) or not math.isfinite(length_penalty) or not length_penalty >= 0:
        raise ValueError(f"length_penalty: expected a number >= 0, got {length_penalty!r}")
    device = torch.device(device) if device is not None else x.device
    n, d = x.shape[:2]
    if compat not in COMPAT:
        raise ValueError(f"compat: expected one of {COMPAT}, got {compat!r}")
    level = netdissect_level(quantile) if compat == "netdissect-lite" else None
    thresholds = resolve_thresholds(x, thresholds, quantile, max_memory, device, level)
    masks = masks.to(device)
    space = RegionSpace(masks.pixel_concepts(max_memory), "auto", max_memory)
    params = SearchParams(L=length, B=beam, max_fraction=1.0, distinct=False, objective="iou")
    grammar = dataclasses.replace(MU_ANDREAS, penalty=float(length_penalty))
    # Units per chunk: their packed and unpacked masks, region counts and beam masks fit in max_memory.
    g = space.regions.num_regions
    per_unit = n * masks.words.shape[2] * 8 * 2 + n * masks.n_pixels + 8 * g * (2 + beam)
    units = max(1, min(d, max_memory // max(per_unit, 1)))
    out: list[list[IoULabel]] = []
    for d0 in range(0, d, units):
        u = _unit_masks(x[:, d0 : d0 + units], thresholds[d0 : d0 + units], masks, max_memory, device, d0)
        stat, totals = _region_counts(u, space, masks.n_pixels)
        beams = beam_search(stat, space, params, totals, grammar)
        out.extend(_labels(beams, totals, space, float(length_penalty)))
    return out


def _unit_masks(x, thresholds, masks: PixelMasks, max_memory: int, device, d0: int = 0) -> torch.Tensor:
    """[N, Dc, W] packed masks of a chunk of units (the layer's d0..) over all images."""
    return torch.cat([u for _, u in iter_unit_words(x, thresholds, masks, max_memory, device, d0)], 0)


def _region_counts(u: torch.Tensor, space: RegionSpace, hw: int) -> tuple[torch.Tensor, torch.Tensor]:
    """([G, Dc] int64 pixels of each unit's mask in each region, [Dc] int64 pixels of each unit's mask)
    from the units' packed masks u [N, Dc, W] (pixel p of image i is sample i * hw + p)."""
    n, dc, _ = u.shape
    unit, pixel = unpack_bits(u, hw).permute(1, 0, 2).reshape(dc, n * hw).nonzero().unbind(1)
    g = space.regions.num_regions
    stat = torch.zeros(g * dc, dtype=torch.int64, device=u.device)
    stat.index_add_(0, space.regions.region_of[pixel] * dc + unit, torch.ones_like(unit))
    return stat.view(g, dc), torch.bincount(unit, minlength=dc)


def _labels(beams, totals: torch.Tensor, space: RegionSpace, penalty: float) -> list[list[IoULabel]]:
    """Each unit's beam as IoULabel (intersection = the formula's pixels in the unit's mask)."""
    hist, s, p, ok = (t.cpu().tolist() for t in (beams.hist, beams.s2, beams.pos, beams.valid))
    tot = totals.cpu().tolist()
    return [
        [
            IoULabel(space.formula([t for t in hist[j][r] if t >= 0]), s[j][r], tot[j] + p[j][r] - s[j][r], penalty)
            for r in range(len(ok[j]))
            if ok[j][r]
        ]
        for j in range(len(ok))
    ]
