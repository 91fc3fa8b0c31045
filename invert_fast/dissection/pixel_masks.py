"""Pixel-level concept masks (segmentations), bit-packed: the data of Network Dissection.

Each image's mask of a concept is its H x W pixels in row-major order packed 64 per int64 word
(pixel y * W + x at bit p % 64 of word p // 64), so a data set of N images and K concepts is one
[N, K, ceil(H * W / 64)] int64 tensor: 8x smaller than bool, and the AND + popcount tallies of
invert_fast.and_popcount run on it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..core.bits import num_words, pack_bits, popcount, unpack_bits
from ..core.concepts import ConceptSet, normalize_descriptions
from ..core.formula import Formula
from ..core.validate import to_tensor, validate_names
from ..files import atomic_write


class PixelMasks:
    """Per-image pixel masks of K named concepts over N images of H x W pixels.

    Attributes:
        words: [N, K, ceil(H * W / 64)] int64 packed masks.
        height, width: mask resolution (1 x 1 for image-level labels: the mask is the whole image).
        names, descriptions: K concept names and definitions.
        categories: K category names (e.g. "shape", "position", "class"); Network Dissection also
            reports the best concept of each category.

    Example:
        >>> m = PixelMasks(torch.rand(10, 2, 28, 28) > 0.5, ["a", "b"])
        >>> m.words.shape, m.pixels().tolist() == m.to_bool().sum((0, 2, 3)).tolist()
        (torch.Size([10, 2, 13]), True)
    """

    def __init__(self, masks, names: Sequence[str], descriptions=None, categories=None):
        m = to_tensor(masks, "masks")
        if m.dim() == 2:
            m = m[:, :, None, None]
        if m.dim() != 4:
            raise ValueError(f"masks: expected [N, K, H, W] (or [N, K] image-level labels), got shape {tuple(m.shape)}")
        if m.dtype != torch.bool:
            if m.is_floating_point() and bool(torch.isnan(m).any()):
                raise ValueError("masks: expected 0/1 values, got NaN")
            bad = (m != 0) & (m != 1)
            if bool(bad.any()):
                raise ValueError(f"masks: expected 0/1 values, got {m[bad].flatten()[0].item()!r}")
            m = m != 0
        n, k, h, w = m.shape
        self._set(pack_bits(m.reshape(n, k, h * w)), h, w, names, descriptions, categories)

    def _set(self, words, height, width, names, descriptions, categories) -> None:
        n, k = words.shape[:2]
        self.words, self.height, self.width = words, int(height), int(width)
        self.names = tuple(validate_names(names, k, "names"))
        self.descriptions = normalize_descriptions(descriptions, self.names)
        cats = ["concept"] * k if categories is None else list(categories)
        if len(cats) != k or not all(isinstance(c, str) and c for c in cats):
            raise ValueError(f"categories: expected {k} non-empty strings, got {categories!r}")
        self.categories = tuple(cats)
        self._index = {s: i for i, s in enumerate(self.names)}
        counts = self.pixels()
        total = n * self.height * self.width
        for i in range(k):
            if counts[i] == 0 or counts[i] == total:
                what = "no pixel" if counts[i] == 0 else "every pixel"
                raise ValueError(
                    f"masks: concept {self.names[i]!r} covers {what} of the {n} images; "
                    "an empty or full concept cannot label a unit (drop it or fix its masks)"
                )

    @classmethod
    def from_words(cls, words: torch.Tensor, height: int, width: int, names, descriptions=None, categories=None):
        """Wrap already packed masks ([N, K, ceil(H * W / 64)] int64, padding bits 0)."""
        if not isinstance(words, torch.Tensor) or words.dtype != torch.int64 or words.dim() != 3:
            raise ValueError(f"words: expected an [N, K, W] int64 tensor, got {getattr(words, 'shape', type(words))}")
        if words.shape[2] != num_words(height * width):
            raise ValueError(
                f"words: expected {num_words(height * width)} words per mask for {height} x {width} pixels, "
                f"got {words.shape[2]}"
            )
        if (height * width) % 64 and bool((words[..., -1] >> ((height * width) % 64)).any()):
            raise ValueError("words: padding bits beyond the last pixel must be 0")
        self = cls.__new__(cls)
        self._set(words, height, width, names, descriptions, categories)
        return self

    @classmethod
    def from_rle(cls, runs: Sequence[Sequence[Sequence[int]]], height: int, width: int, names, **kwargs):
        """Masks from run-length encodings: runs[n][k] alternates lengths of 0s and 1s, starting with 0s,
        over the image's pixels in row-major order (a mask starting with 1s begins with a 0-length run).
        """
        n, k, p = len(runs), len(names), height * width
        dense = torch.zeros(n, k, p, dtype=torch.bool)
        for i, image in enumerate(runs):
            if len(image) != k:
                raise ValueError(f"runs[{i}]: expected {k} run lists (one per concept), got {len(image)}")
            for j, counts in enumerate(image):
                if any(int(c) < 0 for c in counts) or sum(int(c) for c in counts) != p:
                    raise ValueError(f"runs[{i}][{j}]: expected non-negative run lengths summing to {p}, got {counts}")
                pos = 0
                for r, c in enumerate(counts):
                    if r % 2:
                        dense[i, j, pos : pos + int(c)] = True
                    pos += int(c)
        return cls(dense.reshape(n, k, height, width), names, **kwargs)

    # --- shape and content --------------------------------------------------------------------
    @property
    def n_images(self) -> int:
        return self.words.shape[0]

    @property
    def n_pixels(self) -> int:
        """Pixels per image (H * W)."""
        return self.height * self.width

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"PixelMasks({self.n_images} images of {self.height}x{self.width}, {len(self)} concepts)"

    def index(self, name: str) -> int:
        if name not in self._index:
            raise KeyError(f"concept {name!r} is not in the masks (known: {', '.join(self.names[:10])}...)")
        return self._index[name]

    def pixels(self) -> torch.Tensor:
        """[K] int64 pixels each concept covers, over all images."""
        return popcount(self.words).sum(0)

    def to_bool(self) -> torch.Tensor:
        """[N, K, H, W] bool."""
        n, k, _ = self.words.shape
        return unpack_bits(self.words, self.n_pixels).reshape(n, k, self.height, self.width)

    def valid_words(self) -> torch.Tensor:
        """[ceil(H * W / 64)] int64 with the bits of real pixels set (NOT must not set padding)."""
        return pack_bits(torch.ones(self.n_pixels, dtype=torch.bool, device=self.words.device))

    def formula_words(self, formula: Formula | str) -> torch.Tensor:
        """[N, ceil(H * W / 64)] int64 packed pixel mask of a formula (NOT is the complement in each image)."""
        f = formula if isinstance(formula, Formula) else Formula.parse(formula, self.names)
        valid = self.valid_words()

        def atom(name, negated):
            row = self.words[:, self.index(name)]
            return (~row & valid) if negated else row

        return f.evaluate(atom)

    def pixel_concepts(self, max_memory: int = 2**28) -> ConceptSet:
        """The concepts over every pixel of every image as samples (pixel p of image i is sample
        i * H * W + p), for searches in region space (compositional explanations); built in blocks of
        concepts whose unpacked masks fit max_memory bytes."""
        n, k, _ = self.words.shape
        hw, total = self.n_pixels, self.n_images * self.n_pixels
        bits = torch.empty(k, num_words(total), dtype=torch.int64, device=self.words.device)
        step = max(1, max_memory // max(1, 2 * total))
        for k0 in range(0, k, step):
            block = unpack_bits(self.words[:, k0 : k0 + step], hw)  # [N, kc, H * W]
            bits[k0 : k0 + step] = pack_bits(block.permute(1, 0, 2).reshape(-1, total))
        return ConceptSet.from_bits(bits, total, self.names, self.descriptions)

    def image_labels(self) -> torch.Tensor:
        """[N, K] bool: which images hold any pixel of each concept (the image-level view of the masks)."""
        return (self.words != 0).any(2)

    def image_concepts(self) -> tuple[ConceptSet, list[str]]:
        """Image-level ConceptSet of the concepts present in some but not all images, for INVERT.

        Returns:
            (concepts, excluded): excluded names the concepts present in every image (halves of the
            image, the background ...), which have no image-level contrast.
        """
        labels = self.image_labels()
        n = labels.sum(0)
        keep = [i for i in range(len(self)) if 0 < n[i] < self.n_images]
        excluded = [self.names[i] for i in range(len(self)) if i not in keep]
        cs = ConceptSet(labels[:, keep].cpu(), [self.names[i] for i in keep], [self.descriptions[i] for i in keep])
        return cs, excluded

    def to(self, device) -> PixelMasks:
        out = PixelMasks.__new__(PixelMasks)
        out.__dict__.update(self.__dict__)
        out.words = self.words.to(device)
        return out

    # --- files --------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the packed masks to a .npz (words, height, width, names, descriptions, categories)."""
        path = Path(path)
        with atomic_write(path, binary=True) as f:
            np.savez_compressed(
                f,
                words=self.words.cpu().numpy(),
                height=self.height,
                width=self.width,
                names=np.array(self.names, dtype=object).astype(str),
                descriptions=np.array(self.descriptions, dtype=object).astype(str),
                categories=np.array(self.categories, dtype=object).astype(str),
            )
        return path

    @classmethod
    def load(cls, path) -> PixelMasks:
        """Read masks written by save()."""
        with np.load(path, allow_pickle=False) as z:
            missing = {"words", "height", "width", "names"} - set(z.files)
            if missing:
                raise ValueError(f"{path}: not a PixelMasks file, missing {sorted(missing)}")
            return cls.from_words(
                torch.from_numpy(z["words"]),
                int(z["height"]),
                int(z["width"]),
                [str(s) for s in z["names"]],
                [str(s) for s in z["descriptions"]] if "descriptions" in z.files else None,
                [str(s) for s in z["categories"]] if "categories" in z.files else None,
            )
