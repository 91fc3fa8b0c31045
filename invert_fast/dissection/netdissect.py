"""Network Dissection (Bau et al. 2017) as NetDissect-Lite runs it, exact and on bit-packed masks.

Per unit d: a threshold T_d, the top-`quantile` value of all its spatial activations over the data
set (np.quantile(maps[:, d], 1 - quantile), computed exactly by streaming selection); per image the
unit's mask is its activation map upsampled bilinearly (align_corners=False) to the concept masks'
resolution, then > T_d; IoU(d, c) = sum over images |M_d & L_c| / sum over images |M_d | L_c|, with
integer counts from invert_fast.and_popcount. A unit detects its best concept when IoU > 0.04.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from ..core.bits import popcount
from ..core.validate import to_tensor
from ..files import write_frame_csv
from ..ops import and_popcount, top_values, upsample_threshold
from .pixel_masks import PixelMasks


def as_maps(maps, name: str = "maps") -> torch.Tensor:
    """[N, D, h, w] view of activation maps (a tensor, numpy array or memory-mapped .npy; [N, D] is 1 x 1)."""
    x = to_tensor(maps, name)
    if x.dim() == 2:
        x = x[:, :, None, None]
    if x.dim() != 4:
        raise ValueError(f"{name}: expected [N, D, h, w] activation maps (or [N, D]), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected floating-point activations, got {x.dtype}")
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] * x.shape[3] == 0:
        raise ValueError(f"{name}: expected at least one image, unit and pixel, got shape {tuple(x.shape)}")
    return x


def map_chunk(maps: torch.Tensor, start: int, stop: int, device) -> torch.Tensor:
    """Images start:stop of the maps on `device`, float32 (or float64). (The kernels report NaN.)"""
    x = maps[start:stop].to(device)
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _nan_error(image: int, unit: int) -> ValueError:
    return ValueError(f"maps: expected no NaN activations, got NaN at image {image}, unit {unit}")


def images_per_chunk(maps: torch.Tensor, bytes_per_value: int, max_memory: int) -> int:
    per_image = maps.shape[1] * maps.shape[2] * maps.shape[3] * bytes_per_value
    return max(1, min(maps.shape[0], max_memory // max(per_image, 1)))


def quantile_thresholds(
    maps, quantile: float = 0.005, *, max_memory: int = 2**28, device=None, level: float | None = None
) -> torch.Tensor:
    """Each unit's top-`quantile` activation: np.quantile(maps[:, d].ravel(), 1 - quantile), bit for bit.

    The two order statistics numpy interpolates between are found exactly by keeping each unit's
    largest values while streaming over images, so the maps never need to fit in memory.

    Args:
        maps: [N, D, h, w] (or [N, D]) float activations: tensor, array or memory-mapped .npy.
        quantile: share of each unit's activations above its threshold, in (0, 1).
        max_memory: bytes of maps read at a time.
        level: the quantile level itself, instead of 1 - quantile (e.g. NetDissect-Lite's netdissect_level).

    Returns:
        [D] thresholds in the maps' dtype (float32 for half-precision maps) on `device`.

    Example:
        >>> t = quantile_thresholds(torch.randn(100, 8, 7, 7), 0.005)   # [8]
    """
    x = as_maps(maps)
    if not isinstance(quantile, float | int) or not 0 < quantile < 1:
        raise ValueError(f"quantile: expected a number in (0, 1), got {quantile!r}")
    device = torch.device(device) if device is not None else x.device
    n, d = x.shape[:2]
    m = n * x.shape[2] * x.shape[3]
    if level is None:
        level = 1 - float(quantile)
    elif not 0 <= level <= 1:
        raise ValueError(f"level: expected a number in [0, 1], got {level!r}")
    virtual = (m - 1) * np.float64(level)  # numpy's "linear" method: virtual index (n - 1) * q
    lo = m - 1 if virtual >= m - 1 else int(math.floor(virtual))
    hi = m - 1 if virtual >= m - 1 else lo + 1
    gamma = float(virtual - np.float64(lo)) if virtual < m - 1 else 0.0
    keep = m - lo  # values at ascending positions lo..m-1 are the `keep` largest
    top = None
    step = images_per_chunk(x, 8, max_memory)
    for s in range(0, n, step):
        chunk = map_chunk(x, s, s + step, device)
        if top is None:
            top = torch.zeros(d, 0, dtype=chunk.dtype, device=device)
        top, nan_image = top_values(chunk, top, keep)
        bad = (nan_image >= 0).nonzero().flatten()
        if len(bad):
            raise _nan_error(s + int(nan_image[bad[0]]), int(bad[0]))
    a = top[:, m - 1 - lo].cpu().numpy()
    b = top[:, m - 1 - hi].cpu().numpy()
    # numpy's _lerp, in the same dtype and operation order, so the result is identical.
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as numpy's own quantile gives
        diff = b - a
        out = np.add(a, diff * gamma)
        np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5, casting="unsafe")
    return torch.from_numpy(np.asarray(out, dtype=a.dtype)).to(device)


COMPAT = ("invert_fast", "netdissect-lite")


def netdissect_level(quantile: float) -> float:
    """The quantile level NetDissect-Lite thresholds at for a top share `quantile`: its quantile sketch
    keeps 1,000 evenly spaced levels (i / 999) and the threshold is column int(1000 (1 - q) - 1), e.g.
    994 / 999 = 0.994995 for q = 0.005 (not 0.995). The sketch itself is randomised; this package takes
    the exact quantile at that level."""
    return int(1000 * (1 - quantile) - 1) / 999


def check_masks(x: torch.Tensor, masks) -> PixelMasks:
    """The masks of the maps' images as PixelMasks: a PixelMasks, or plain [N, K, H, W] (or [N, K]
    image-level) 0/1 tensors or arrays (concepts then named c0, c1, ...)."""
    if not isinstance(masks, PixelMasks):
        if not isinstance(masks, torch.Tensor | np.ndarray):
            raise TypeError(
                f"masks: expected a PixelMasks or an [N, K, H, W] 0/1 tensor or array, got {type(masks).__name__}"
            )
        m = to_tensor(masks, "masks")
        masks = PixelMasks(m, [f"c{i}" for i in range(m.shape[1] if m.dim() >= 2 else 0)])
    if masks.n_images != x.shape[0]:
        raise ValueError(f"masks: expected masks of the {x.shape[0]} images of maps, got {masks.n_images} images")
    return masks


def resolve_thresholds(
    x: torch.Tensor, thresholds, quantile: float, max_memory: int, device, level: float | None = None
) -> torch.Tensor:
    """The given [D] thresholds (checked) on `device`, or the maps' top-quantile thresholds (at `level`
    instead of 1 - quantile when given)."""
    if thresholds is None:
        return quantile_thresholds(x, quantile, max_memory=max_memory, device=device, level=level)
    t = to_tensor(thresholds, "thresholds").to(device)
    if t.shape != (x.shape[1],):
        raise ValueError(f"thresholds: expected [{x.shape[1]}] (one per unit), got shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)):
        raise TypeError(f"thresholds: expected real numbers, got dtype {t.dtype}")
    nan = torch.isnan(t.double()).nonzero()
    if nan.numel():
        raise ValueError(
            f"thresholds: unit {int(nan[0])} has a NaN threshold ({nan.numel()} unit(s) in all); every unit mask "
            "would be empty"
        )
    if t.is_floating_point() and x.dtype in (torch.float16, torch.bfloat16, torch.float32) and t.dtype == torch.float64:
        rounded = int((t.float().double() != t).sum())  # half-precision maps are compared in float32 too
        if rounded:
            warnings.warn(
                f"thresholds: {rounded} of {t.numel()} float64 thresholds are not float32 values and are rounded to "
                f"the nearest float32 before the > test with {x.dtype} maps (pass float32 thresholds to silence this)",
                stacklevel=3,
            )
    return t


def unit_words(
    chunk: torch.Tensor, thresholds: torch.Tensor, height: int, width: int, offset: int = 0, unit_offset: int = 0
) -> torch.Tensor:
    """Bit-packed unit masks of a chunk of images: the maps upsampled bilinearly (align_corners=False)
    to height x width, then > thresholds.

    Exact: the bilinear value of a pixel is a mean of four source values with integer weights, and the
    kernel decides "> threshold" by the exact sign of that sum (see csrc/upsample_threshold.h). torch's
    float32 F.interpolate agrees except within rounding of the threshold, where it is not even
    consistent with itself (its last bit changes with the number of channels).

    Args:
        chunk: [n, D, h, w] float32/float64 maps.
        thresholds: [D] (cast to the maps' dtype).
        height, width: concept mask resolution.
        offset: number of the chunk's first image; unit_offset: of its first unit (for error messages).

    Returns:
        [n, D, ceil(height * width / 64)] int64.
    """
    th = thresholds.to(device=chunk.device, dtype=chunk.dtype)
    words, has_nan = upsample_threshold(chunk, th, height, width)
    bad = has_nan.nonzero()
    if len(bad):
        raise _nan_error(offset + int(bad[0, 0]), unit_offset + int(bad[0, 1]))
    return words


def iter_unit_words(
    x: torch.Tensor, thresholds: torch.Tensor, masks: PixelMasks, max_memory: int, device, unit_offset: int = 0
):
    """Stream the unit masks over the images: yields (first image, [n, D, W] packed masks) per chunk of
    images, a chunk's maps, upsampled values and masks within max_memory."""
    step = images_per_chunk(x, 8 + 8 * masks.n_pixels // (x.shape[2] * x.shape[3]), max_memory)
    for s in range(0, x.shape[0], step):
        yield s, unit_words(map_chunk(x, s, s + step, device), thresholds, masks.height, masks.width, s, unit_offset)


@dataclass
class Dissection:
    """Network Dissection counts and labels of one layer.

    Attributes:
        thresholds: [D] activation thresholds.
        intersection, union: [D, K] int64 pixel counts summed over images.
        unit_pixels: [D] int64 pixels of each unit's masks; concept_pixels: [K] int64.
        names, categories, descriptions: the K concepts.
        iou_threshold: a unit detects its best concept when IoU > this (>= with compat "netdissect-lite").
        compat: "invert_fast" or "netdissect-lite": the definition the counts follow (network_dissection).
        seconds: wall time of the dissection (thresholds + tally).

    Example:
        >>> d = network_dissection(maps, masks)          # maps [N, D, h, w], masks PixelMasks [N, K, H, W]
        >>> d.iou().shape, d.best()[0]                   # [D, K] IoU; unit 0's best concept and IoU
    """

    thresholds: torch.Tensor
    intersection: torch.Tensor
    union: torch.Tensor
    unit_pixels: torch.Tensor
    concept_pixels: torch.Tensor
    names: tuple[str, ...]
    categories: tuple[str, ...]
    descriptions: tuple[str, ...] = ()
    iou_threshold: float = 0.04
    layer: str = ""
    seconds: float = 0.0
    compat: str = "invert_fast"
    _best: dict = field(default_factory=dict, repr=False)

    def is_detector(self, iou: float) -> bool:
        """Whether a best IoU makes its unit a detector: > iou_threshold, or >= as NetDissect-Lite's report."""
        return iou >= self.iou_threshold if self.compat == "netdissect-lite" else iou > self.iou_threshold

    @property
    def iou(self) -> torch.Tensor:
        """[D, K] float64 IoU (0 where the union is empty)."""
        u = self.union.to(torch.float64)
        return torch.where(self.union > 0, self.intersection.to(torch.float64) / u.clamp(min=1), 0.0)

    def best(self, category: str | None = None) -> tuple[list[int], list[float]]:
        """Each unit's best concept (of one category, or of all): (concept indices [D], IoUs [D]).

        Exact: equal float IoUs are compared as fractions; exact ties go to the first name in text
        order. A unit that overlaps no concept (IoU 0, e.g. an empty mask: a ReLU6 unit saturated at 6
        over its top quantile has threshold 6 and nothing above it) has no label: index -1.
        """
        if category not in self._best:
            cols = [k for k, c in enumerate(self.categories) if category is None or c == category]
            if not cols:
                raise ValueError(f"category: expected one of {sorted(set(self.categories))}, got {category!r}")
            if self.compat == "netdissect-lite":
                self._best[category] = self._best_netdissect_lite(category)
            else:
                self._best[category] = best_by_iou(self.intersection[:, cols], self.union[:, cols], cols, self.names)
        return self._best[category]

    def _best_netdissect_lite(self, category: str | None) -> tuple[list[int], list[float]]:
        """NetDissect-Lite's choice: float64 IoUs, in each primary category the first label of highest IoU
        (numpy argmax), then the category of highest such IoU (the first on ties, categories in order of
        first appearance); -1 where it is 0."""
        iou = self.iou
        order = list(dict.fromkeys(self.categories)) if category is None else [category]
        idx, val = [-1] * iou.shape[0], [0.0] * iou.shape[0]
        for c in order:
            cols = [k for k, cat in enumerate(self.categories) if cat == c]
            sub = iou[:, cols]
            arg = sub.argmax(1).tolist()
            for d, j in enumerate(arg):
                v = float(sub[d, j])
                if v > val[d]:
                    idx[d], val[d] = cols[j], v
        return idx, val

    def records(self) -> list[dict]:
        """One dict per unit: unit, threshold, unit_pixels, label, category, iou, detector, then label/iou
        per category ("" where the unit overlaps none)."""
        idx, iou = self.best()
        cats = sorted(set(self.categories))
        per_cat = {c: self.best(c) for c in cats}
        name = lambda k: self.names[k] if k >= 0 else ""  # noqa: E731
        rows = []
        for d in range(len(idx)):
            k = idx[d]
            row = {
                "layer": self.layer,
                "unit": d,
                "threshold": float(self.thresholds[d]),
                "unit_pixels": int(self.unit_pixels[d]),
                "label": name(k),
                "category": self.categories[k] if k >= 0 else "",
                "iou": iou[d],
                "detector": self.is_detector(iou[d]),
                "intersection": int(self.intersection[d, k]) if k >= 0 else 0,
                "union": int(self.union[d, k]) if k >= 0 else 0,
            }
            for c in cats:
                row[f"label_{c}"] = name(per_cat[c][0][d])
                row[f"iou_{c}"] = per_cat[c][1][d]
            rows.append(row)
        return rows

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.records())

    def to_csv(self, path) -> None:
        """Write records() as CSV (atomically)."""
        write_frame_csv(path, self.to_dataframe())


def best_by_iou(inter: torch.Tensor, union: torch.Tensor, cols: list[int], names) -> tuple[list[int], list[float]]:
    """Per row, the column of highest IoU inter/union, exact (ties: first name in text order); -1 where
    every IoU is 0."""
    iou = torch.where(union > 0, inter.double() / union.double().clamp(min=1), 0.0)
    top = iou.max(1).values
    idx, val = [], []
    for d in range(iou.shape[0]):
        # Floats within 1e-12 of the maximum are compared exactly (distinct fractions may round alike).
        near = (iou[d] >= top[d] - 1e-12).nonzero().flatten().tolist()
        i, u = inter[d].tolist(), union[d].tolist()
        j = min(near, key=lambda j: (-Fraction(i[j], u[j]) if u[j] else 0, names[cols[j]]))
        idx.append(cols[j] if i[j] > 0 else -1)
        val.append(float(iou[d, j]))
    return idx, val


def network_dissection(
    maps,
    masks: PixelMasks,
    quantile: float = 0.005,
    *,
    iou_threshold: float = 0.04,
    thresholds=None,
    max_memory: int = 2**28,
    device=None,
    layer: str = "",
    compat: str = "invert_fast",
    label_size: tuple[int, int] | None = None,
) -> Dissection:
    """Network Dissection of every unit of a layer against pixel-level concepts.

    Two definitions (`compat`):

    - "invert_fast" (default): threshold = the exact quantile at level 1 - quantile; IoU = ``|M ∩ C|`` /
      ``|M ∪ C|`` with every count summed over the images (all of the unit's pixels in the union); detector
      when IoU > iou_threshold; best label: highest IoU, exact ties to the first name in text order.
    - "netdissect-lite": NetDissect-Lite's arithmetic (feature_operation.py): threshold = the exact
      quantile at netdissect_level(quantile) (994/999 for 0.005); a unit's pixels of an image count toward
      the union of category c's labels only where its mask covers a pixel of some label of c in that image;
      detector when IoU >= iou_threshold; best label per category (first of highest float IoU), then the
      category of highest IoU. Image-level (1 x 1) masks need `label_size`, the label resolution (sh, sw)
      at which the original counts them (the label covering the whole image).

    Args:
        maps: [N, D, h, w] activation maps (tensor, array or memory-mapped .npy, streamed in image
            chunks of at most `max_memory` bytes); [N, D] for one value per image.
        masks: PixelMasks of N images at H x W, or plain [N, K, H, W] 0/1 tensors / arrays (names c0, c1,
            ...). 1 x 1 masks are image-level labels: the concept then covers the whole image and the unit
            masks are taken at the maps' own resolution.
        quantile: the top share of each unit's activations that its masks cover (NetDissect: 0.005).
        iou_threshold: IoU above which a unit is a detector of its best concept.
        thresholds: [D] precomputed thresholds (skips the quantile pass); NaN is an error. They are cast to
            the maps' precision before the > test (float32 for float32 and half-precision maps: float64
            thresholds are rounded to the nearest float32, with a warning when that changes any).
        device: where to compute (default: the maps' device; "cuda" streams chunks to the GPU).
        compat: "invert_fast" or "netdissect-lite" (above).
        label_size: (sh, sw) of image-level masks under compat "netdissect-lite".

    Returns:
        Dissection with thresholds [D], intersection/union [D, K], best labels per unit and category.

    Example:
        >>> diss = network_dissection(maps, masks)          # maps [N, D, 7, 7], masks 28 x 28
        >>> diss.best()[0][:3], diss.iou.shape              # concept indices, [D, K]
    """
    t0 = time.perf_counter()
    x = as_maps(maps)
    masks = check_masks(x, masks)
    if not isinstance(iou_threshold, float | int) or not 0 <= iou_threshold < 1:
        raise ValueError(f"iou_threshold: expected a number in [0, 1), got {iou_threshold!r}")
    if compat not in COMPAT:
        raise ValueError(f"compat: expected one of {COMPAT}, got {compat!r}")
    device = torch.device(device) if device is not None else x.device
    n, d, h, w = x.shape
    lite = compat == "netdissect-lite"
    if lite and masks.n_pixels == 1:
        masks = _at_label_size(masks, label_size)
    level = netdissect_level(quantile) if lite else None
    thresholds = resolve_thresholds(x, thresholds, quantile, max_memory, device, level)
    cwords = masks.words.to(device)
    k = len(masks)
    inter = torch.zeros(d, k, dtype=torch.int64, device=device)
    unit_px = torch.zeros(d, dtype=torch.int64, device=device)
    image_level = masks.n_pixels == 1
    out_px = h * w if image_level else masks.n_pixels
    if lite:
        cats = list(dict.fromkeys(masks.categories))
        members = [[j for j, c in enumerate(masks.categories) if c == cat] for cat in cats]
        units_cat = torch.zeros(d, len(cats), dtype=torch.int64, device=device)
        for s, u in iter_unit_words(x, thresholds, masks, max_memory, device):
            cw = cwords[s : s + u.shape[0]]
            inter += and_popcount(u, cw)
            px = popcount(u)  # [n, D] pixels of each unit's mask per image
            unit_px += px.sum(0)
            for ci, cols in enumerate(members):
                cat_mask = cw[:, cols[0]].clone()  # [n, W]: pixels with some label of this category
                for j in cols[1:]:
                    cat_mask |= cw[:, j]
                covered = (u & cat_mask[:, None, :]).ne(0).any(-1)  # [n, D]
                units_cat[:, ci] += (px * covered).sum(0)
        concept_px = masks.pixels().to(device)
        union = units_cat[:, [cats.index(c) for c in masks.categories]] + concept_px[None, :] - inter
    elif image_level:
        step = images_per_chunk(x, 16, max_memory)
        for s in range(0, n, step):
            chunk = map_chunk(x, s, s + step, device)
            # A labelled image's concept mask is the whole image: count the unit's pixels there.
            nan = torch.isnan(chunk).flatten(2).any(2).nonzero()
            if len(nan):
                raise _nan_error(s + int(nan[0, 0]), int(nan[0, 1]))
            cnt = (chunk > thresholds.to(chunk.dtype)[None, :, None, None]).flatten(2).sum(2)
            labels = (cwords[s : s + step, :, 0] & 1).to(torch.float64)
            inter += (cnt.T.to(torch.float64) @ labels).round().to(torch.int64)  # exact below 2^53
            unit_px += cnt.sum(0)
    else:
        for s, u in iter_unit_words(x, thresholds, masks, max_memory, device):
            inter += and_popcount(u, cwords[s : s + u.shape[0]])
            unit_px += popcount(u).sum(0)
    if not lite:
        concept_px = masks.pixels().to(device) * (out_px if image_level else 1)
        union = unit_px[:, None] + concept_px[None, :] - inter
    return Dissection(
        thresholds=thresholds,
        intersection=inter,
        union=union,
        unit_pixels=unit_px,
        concept_pixels=concept_px,
        names=masks.names,
        categories=masks.categories,
        descriptions=masks.descriptions,
        iou_threshold=float(iou_threshold),
        layer=layer,
        seconds=time.perf_counter() - t0,
        compat=compat,
    )


def _at_label_size(masks: PixelMasks, label_size) -> PixelMasks:
    """Image-level (1 x 1) masks as full-image masks at the label resolution (sh, sw)."""
    if (
        not isinstance(label_size, tuple | list)
        or len(label_size) != 2
        or not all(isinstance(v, int) and v >= 1 for v in label_size)
    ):
        raise ValueError(
            "label_size: compat 'netdissect-lite' counts image-level labels at the label resolution; expected "
            f"(sh, sw) positive integers, got {label_size!r}"
        )
    sh, sw = label_size
    full = masks.to_bool().expand(-1, -1, sh, sw)
    return PixelMasks(full, masks.names, masks.descriptions, masks.categories)
