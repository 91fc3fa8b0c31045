"""Concepts derived from the data itself: pixel statistics of images."""

from __future__ import annotations

import numpy as np

from .concepts import ConceptSet


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
    return (background & ~reached).reshape(len(images), -1).sum(1) >= min_pixels
