"""INVERT and Network Dissection side by side on one layer and one data set.

Both methods see the same units and the same concepts. Network Dissection (or, with length > 1,
Mu & Andreas' compositional search) scores pixel masks by IoU; INVERT scores image-level labels by
AUROC, using each unit's spatial mean activation and, for each pixel concept, whether an image holds
any of its pixels. Concepts present in every image (the image halves, the background, ...) have no
image-level contrast; they are left out of INVERT's search and listed in `excluded`.

Cross-scores: the IoU of INVERT's label (its formula evaluated on the pixel masks, NOT as the pixel
complement) with the unit's NetDissect masks, and the AUROC of NetDissect's label (its formula
evaluated on the image-level labels; NaN where that mask is empty or full).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.bits import popcount
from ..core.concepts import ConceptSet
from ..core.formula import Formula
from ..core.results import Explanations
from ..core.scoring import score
from ..core.search import explain
from ..files import write_frame_csv
from .compositional import IoULabel, compositional_explain
from .netdissect import (
    Dissection,
    as_maps,
    check_masks,
    images_per_chunk,
    iter_unit_words,
    map_chunk,
    network_dissection,
)
from .pixel_masks import PixelMasks

INVERT_DETECTOR_AUC = 0.9  # the AUC cut at which the detector summary counts an INVERT label

COLUMNS = [
    "layer",
    "unit",
    "invert_label",
    "invert_auc",
    "invert_p_value",
    "invert_label_iou",
    "netdissect_label",
    "netdissect_iou",
    "netdissect_detector",
    "netdissect_label_auc",
    "agree",
]


@dataclass
class Comparison:
    """Per-unit labels of both methods, their cross-scores, agreement and timings.

    Attributes:
        rows: one dict per unit with the COLUMNS keys.
        invert: INVERT's Explanations; dissection: the Dissection; compositional: the
            compositional beams (length > 1) or None.
        invert_seconds, netdissect_seconds: wall time of each method (INVERT: spatial mean + search;
            NetDissect: thresholds + tally (+ compositional search)).
        excluded: pixel concepts without image-level contrast (not offered to INVERT).
        activations: [N, D] float64 spatial means INVERT labelled; concepts: the image-level ConceptSet.
    """

    rows: list[dict]
    invert: Explanations
    dissection: Dissection
    compositional: list[list[IoULabel]] | None
    invert_seconds: float
    netdissect_seconds: float
    excluded: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    activations: torch.Tensor | None = None
    concepts: ConceptSet | None = None

    @property
    def agreement(self) -> float:
        """Share of units whose two labels are the same formula."""
        return float(np.mean([r["agree"] for r in self.rows])) if self.rows else float("nan")

    def unique_detectors(self, auc_threshold: float = INVERT_DETECTOR_AUC) -> dict[str, tuple[int, int]]:
        """Network Dissection's summary, for both methods: per category, the number of distinct concepts
        that some unit detects. NetDissect: the concepts of detector units' labels (IoU threshold of its
        definition). INVERT: the concepts of best labels with AUC >= auc_threshold (INVERT defines no
        detector; this cut is stated wherever the count is shown). A concept counts for its category
        (a Broden label for its primary category); a formula counts each of its concepts.

        Returns:
            {category: (NetDissect count, INVERT count)} in the masks' category order.
        """
        cat = dict(zip(self.dissection.names, self.dissection.categories, strict=True))
        nd: set[str] = set()
        inv: set[str] = set()
        for r, e in zip(self.rows, self.invert.best(), strict=True):
            if r["netdissect_detector"] and r["netdissect_label"]:
                nd |= Formula.parse(r["netdissect_label"], self.dissection.names).concepts()
            if e is not None and e.auc >= auc_threshold:
                inv |= e.formula.concepts()
        order = list(dict.fromkeys(self.dissection.categories))
        return {c: (sum(cat[k] == c for k in nd), sum(cat[k] == c for k in inv)) for c in order}

    def detectors_line(self) -> str:
        """'unique detectors per category (NetDissect / INVERT AUC >= 0.9): shape 3/4, ...'."""
        counts = self.unique_detectors()
        parts = ", ".join(f"{c} {a}/{b}" for c, (a, b) in counts.items())
        return f"unique detectors per category (NetDissect / INVERT with AUC >= {INVERT_DETECTOR_AUC}): {parts}"

    def summary(self) -> str:
        n = len(self.rows)
        det = sum(r["netdissect_detector"] for r in self.rows)
        return (
            f"{n} units; agreement {self.agreement:.1%} ({sum(r['agree'] for r in self.rows)}/{n}); "
            f"NetDissect ({self.dissection.compat} definition) detectors "
            f"(IoU {'>=' if self.dissection.compat == 'netdissect-lite' else '>'} {self.dissection.iou_threshold}) "
            f"{det}/{n}; "
            f"INVERT {self.invert_seconds:.2f} s, NetDissect{' + compositional' if self.compositional else ''} "
            f"{self.netdissect_seconds:.2f} s"
        )

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=COLUMNS)

    def to_csv(self, path) -> None:
        """Write rows as CSV (atomically)."""
        write_frame_csv(path, self.to_dataframe())


def compare(
    maps,
    masks: PixelMasks,
    *,
    length: int = 1,
    beam: int = 5,
    quantile: float = 0.005,
    iou_threshold: float = 0.04,
    min_fraction: float = 0.0,
    max_fraction: float = 0.5,
    layer: str = "",
    max_memory: int = 2**28,
    device=None,
    compat: str = "invert_fast",
    label_size: tuple[int, int] | None = None,
) -> Comparison:
    """Label every unit with INVERT and with Network Dissection and score each label by the other's metric.

    Args:
        maps: [N, D, h, w] activation maps (tensor, array or memory-mapped .npy).
        masks: PixelMasks of the N images (or plain [N, K, H, W] 0/1 tensors / arrays).
        length: formula length of both methods (1: NetDissect's single concepts; > 1: INVERT formulas
            vs Mu & Andreas' compositional explanations).
        beam: beam size of both searches.
        quantile, iou_threshold: NetDissect's.
        min_fraction, max_fraction: INVERT's admissible concept fractions.
        compat, label_size: the Network Dissection definition, "invert_fast" or "netdissect-lite" (see
            network_dissection; with length > 1 the compositional search uses its thresholds).

    Returns:
        Comparison (rows, agreement, timings; to_csv, html).

    Example:
        >>> cmp = compare(maps, derived.pixel_masks(images, labels, class_names))
        >>> print(cmp.summary()); cmp.to_csv("compare.csv")
    """
    x = as_maps(maps)
    masks = check_masks(x, masks)
    device = torch.device(device) if device is not None else x.device
    t0 = time.perf_counter()
    diss = network_dissection(
        x, masks, quantile, iou_threshold=iou_threshold, max_memory=max_memory, device=device, layer=layer,
        compat=compat, label_size=label_size,
    )  # fmt: skip
    comp = None
    if length > 1:
        comp = compositional_explain(
            x, masks, length=length, beam=beam, thresholds=diss.thresholds, max_memory=max_memory, device=device,
            compat=compat,
        )  # fmt: skip
    t1 = time.perf_counter()
    concepts, excluded = masks.image_concepts()
    acts = _spatial_mean(x, max_memory, device)
    inv_labels = explain(
        acts, concepts.to(device), L=length, B=beam, min_fraction=min_fraction, max_fraction=max_fraction, layer=layer
    )
    t2 = time.perf_counter()

    nd_idx, nd_iou = diss.best()
    # A unit whose mask overlaps no concept has no NetDissect label (None).
    if comp is None:
        nd_formulas = [Formula.atom(masks.names[k]) if k >= 0 else None for k in nd_idx]
        nd_scores = nd_iou
    else:
        nd_formulas = [u[0].formula if u[0].intersection > 0 else None for u in comp]
        nd_scores = [u[0].iou for u in comp]
    inv_best = inv_labels.best()
    inv_formulas = [e.formula if e is not None else None for e in inv_best]
    inv_iou = _formula_iou(x, masks, diss.thresholds, inv_formulas, max_memory, device)
    nd_auc = _formula_auc(acts, masks, nd_formulas)
    rows = []
    for d in range(x.shape[1]):
        e = inv_best[d]
        rows.append(
            {
                "layer": layer,
                "unit": d,
                "invert_label": str(e.formula) if e else "",
                "invert_auc": e.auc if e else float("nan"),
                "invert_p_value": e.p_value if e else float("nan"),
                "invert_label_iou": inv_iou[d],
                "netdissect_label": str(nd_formulas[d]) if nd_formulas[d] is not None else "",
                "netdissect_iou": float(nd_scores[d]),
                "netdissect_detector": diss.is_detector(float(nd_scores[d])),
                "netdissect_label_auc": nd_auc[d],
                "agree": e is not None and e.formula == nd_formulas[d],
            }
        )
    params = dict(length=length, beam=beam, quantile=quantile, iou_threshold=iou_threshold, netdissect=compat)
    return Comparison(rows, inv_labels, diss, comp, t2 - t1, t1 - t0, excluded, params, acts, concepts)


def _spatial_mean(x: torch.Tensor, max_memory: int, device) -> torch.Tensor:
    """[N, D] float64 spatial means of the maps, streamed."""
    step = images_per_chunk(x, 8, max_memory)
    return torch.cat([map_chunk(x, s, s + step, device).double().mean((2, 3)) for s in range(0, x.shape[0], step)])


def _formula_iou(x, masks: PixelMasks, thresholds, formulas, max_memory: int, device) -> list[float]:
    """IoU of each unit's NetDissect masks with its formula's pixel masks (NaN where no formula)."""
    d = x.shape[1]
    distinct = sorted({f for f in formulas if f is not None}, key=str)
    if not distinct:
        return [float("nan")] * d
    g = torch.tensor([distinct.index(f) if f is not None else 0 for f in formulas], device=device)
    fw = torch.stack([masks.formula_words(f) for f in distinct], 1).to(device)  # [N, F, W]
    inter = torch.zeros(d, dtype=torch.int64, device=device)
    unit_px = torch.zeros(d, dtype=torch.int64, device=device)
    for s, u in iter_unit_words(x, thresholds, masks, max_memory, device):
        inter += popcount(u & fw[s : s + u.shape[0]][:, g]).sum(0)  # each unit against its own formula
        unit_px += popcount(u).sum(0)
    f_px = popcount(fw).sum(0)
    union = unit_px + f_px[g] - inter
    iou = torch.where(union > 0, inter.double() / union.double().clamp(min=1), 0.0).tolist()
    return [iou[j] if formulas[j] is not None else float("nan") for j in range(d)]


def _formula_auc(acts: torch.Tensor, masks: PixelMasks, formulas) -> list[float]:
    """AUROC of each unit for its formula evaluated on the image-level labels (NaN if empty or full, or no formula)."""
    labels = masks.image_labels().cpu()
    all_concepts = ConceptSet(labels, masks.names)
    distinct = sorted({f for f in formulas if f is not None}, key=str)
    if not distinct:
        return [float("nan")] * len(formulas)
    auc = score(acts.cpu(), all_concepts, distinct)  # [D, F]
    col = {f: i for i, f in enumerate(distinct)}
    return [float(auc[d, col[f]]) if f is not None else float("nan") for d, f in enumerate(formulas)]
