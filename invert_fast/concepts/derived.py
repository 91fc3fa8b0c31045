"""Concepts derived from the data itself: pixel statistics of images."""

from __future__ import annotations

import numpy as np
import torch

from ..core.concepts import ConceptSet
from ..dissection.pixel_masks import PixelMasks


def pixel_concepts(images: np.ndarray, threshold: int = 30) -> ConceptSet:
    """Object size, darkness and shape concepts of grayscale images of one light object on a dark background.

    Args:
        images: [N, H, W] uint8.
        threshold: pixels above it belong to the object.

    Returns:
        ConceptSet of "large object" / "small object" (top / bottom quarter of object area), "dark
        object" / "light object" (top / bottom quarter of mean object intensity, which is darkness once
        the images are inverted to dark-on-white), "wide object" / "tall object" (bounding box at least
        1.3x wider than tall / taller than wide); each with its definition as description.
    """
    if images.ndim != 3:
        raise ValueError(f"images: expected [N, H, W] grayscale, got shape {images.shape}")
    ink = images > threshold
    area = ink.reshape(len(images), -1).sum(1)
    mean = (images.astype(np.float64) * ink).reshape(len(images), -1).sum(1) / np.maximum(area, 1)
    height, width = ink.any(2).sum(1), ink.any(1).sum(1)
    q = np.quantile
    spec = {
        "large object": (area >= q(area, 0.75), f"top quarter of object area (>= {q(area, 0.75):.0f} pixels)"),
        "small object": (area <= q(area, 0.25), f"bottom quarter of object area (<= {q(area, 0.25):.0f} pixels)"),
        "dark object": (mean >= q(mean, 0.75), "top quarter of mean object intensity (darkest once inverted)"),
        "light object": (mean <= q(mean, 0.25), "bottom quarter of mean object intensity (lightest once inverted)"),
        "wide object": (width >= 1.3 * height, "bounding box at least 1.3x wider than tall"),
        "tall object": (height >= 1.3 * width, "bounding box at least 1.3x taller than wide"),
    }
    return ConceptSet(np.stack([m for m, _ in spec.values()], 1), list(spec), [d for _, d in spec.values()])


def enclosed_regions(images: np.ndarray, threshold: int = 127, min_pixels: int = 2) -> np.ndarray:
    """Which images hold a closed loop: background pixels that ink walls off from the border.

    Background connected (4-neighbourhood) to the image border is flooded by repeated dilation; a
    loop exists when at least `min_pixels` background pixels remain unreached.

    Args:
        images: [N, H, W] uint8, ink brighter than `threshold`.

    Returns:
        [N] bool.
    """
    return enclosed_pixels(images, threshold).reshape(len(images), -1).sum(1) >= min_pixels


def enclosed_pixels(images: np.ndarray, threshold: int = 127) -> np.ndarray:
    """Background pixels that ink walls off from the image border (the insides of closed loops).

    Args:
        images: [N, H, W] uint8, ink brighter than `threshold`.

    Returns:
        [N, H, W] bool.
    """
    if images.ndim != 3:
        raise ValueError(f"images: expected [N, H, W] grayscale, got shape {images.shape}")
    background = images <= threshold
    reached = np.zeros_like(background)
    reached[:, 0, :], reached[:, -1, :] = background[:, 0, :], background[:, -1, :]
    reached[:, :, 0] |= background[:, :, 0]
    reached[:, :, -1] |= background[:, :, -1]
    while True:
        grown = reached.copy()
        grown[:, 1:, :] |= reached[:, :-1, :]
        grown[:, :-1, :] |= reached[:, 1:, :]
        grown[:, :, 1:] |= reached[:, :, :-1]
        grown[:, :, :-1] |= reached[:, :, 1:]
        grown &= background
        if np.array_equal(grown, reached):
            break
        reached = grown
    return background & ~reached


def pixel_masks(
    images: np.ndarray, labels=None, class_names=None, threshold: int = 30, hole_threshold: int = 127
) -> PixelMasks:
    """Pixel-level concepts of grayscale images of one light object on a dark background (MNIST, Fashion-MNIST).

    Concepts (category): "object" silhouette (pixels > threshold), "background", "hole" (background
    enclosed by ink brighter than hole_threshold: closed loops), "edge" (object pixels with a
    4-neighbour outside the object) (shape); "top half", "bottom half", "left half", "right half" of
    the image (position); with labels, one mask per class: the object's pixels in images of that
    class (class). Concepts that cover no pixel (e.g. no image has a hole) are reported, not dropped:
    PixelMasks raises.

    Args:
        images: [N, H, W] uint8.
        labels: [N] class indices (optional); class_names: their names (default "class <i>").

    Returns:
        PixelMasks at the images' resolution.
    """
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images: expected [N, H, W] uint8 grayscale, got {images.dtype} of shape {images.shape}")
    n, h, w = images.shape
    obj = images > threshold
    inside = np.zeros_like(obj)
    inside[:, 1:-1, 1:-1] = obj[:, :-2, 1:-1] & obj[:, 2:, 1:-1] & obj[:, 1:-1, :-2] & obj[:, 1:-1, 2:]
    rows = np.arange(h)[:, None].repeat(w, 1)
    cols = np.arange(w)[None, :].repeat(h, 0)
    spec = {
        "object": (obj, "shape", f"silhouette: pixels brighter than {threshold}"),
        "background": (~obj, "shape", "pixels not in the silhouette"),
        "hole": (enclosed_pixels(images, hole_threshold), "shape", "background enclosed by the object (closed loops)"),
        "edge": (obj & ~inside, "shape", "silhouette pixels with a 4-neighbour outside it"),
        "top half": (np.broadcast_to(rows < h // 2, (n, h, w)), "position", f"rows 0-{h // 2 - 1}"),
        "bottom half": (np.broadcast_to(rows >= h - h // 2, (n, h, w)), "position", f"rows {h - h // 2}-{h - 1}"),
        "left half": (np.broadcast_to(cols < w // 2, (n, h, w)), "position", f"columns 0-{w // 2 - 1}"),
        "right half": (np.broadcast_to(cols >= w - w // 2, (n, h, w)), "position", f"columns {w - w // 2}-{w - 1}"),
    }
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels: expected [{n}] class indices, got shape {labels.shape}")
        classes = np.unique(labels) if class_names is None else np.arange(len(class_names))
        for c in classes:
            name = str(class_names[c]) if class_names is not None else f"class {c}"
            spec[name] = (obj & (labels == c)[:, None, None], "class", f"the object's pixels in images of class {name}")
    masks = np.stack([m for m, _, _ in spec.values()], 1)
    return PixelMasks(
        torch.from_numpy(masks), list(spec), [d for _, _, d in spec.values()], [c for _, c, _ in spec.values()]
    )
