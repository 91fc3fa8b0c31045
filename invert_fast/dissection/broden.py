"""Broden, the data set format of Network Dissection and compositional explanations (Bau et al. 2017;
Mu & Andreas 2020): read into PixelMasks, and written from them.

A Broden directory (the format NetDissect-Lite's loader/data_loader.py reads):

- index.csv: columns image, split, ih, iw, sh, sw, then one per category. `image` is a path under
  images/; ih x iw the image size, sh x sw the label size. A category cell lists the image's labels of
  that category separated by ";": PNG files under images/ (pixel labels, label number = R + 256 G at
  each pixel, 0 = unlabelled; several files are several layers, e.g. overlapping parts), or label
  numbers (scalar labels such as scenes: the label covers the whole image). Empty: none.
- category.csv: one row per category (name, first, last, count, frequency), in order.
- label.csv: number, name, category ("object(12);part(3)"), frequency, coverage, syns ("a;b").
- c_<category>.csv: code, number, name, frequency, coverage: the category's labels, coverage in
  units of whole images.

A label's primary category is, as in the original, the category (of those read) in which its coverage
is highest; on equal coverage the later one in category.csv order (the original's max over
(coverage, category index)). Network Dissection picks a unit's best label per primary category.

Reading needs Pillow (PNG and JPEG decoding): pip install Pillow.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.bits import num_words, pack_bits, popcount
from .pixel_masks import PixelMasks

META = ("image", "split", "ih", "iw", "sh", "sw")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalization (cases.zoo uses these too)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std per channel, torchvision's ImageNet normalization.

    Args:
        x: [B, 3, H, W] RGB in [0, 1], or [B, 1, H, W] gray (broadcast to the 3 channels).

    Returns:
        [B, 3, H, W] float32.
    """
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def require_pillow():
    """PIL.Image, or an ImportError that says how to install Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading Broden images needs Pillow: pip install Pillow") from None
    return Image


MAX_LABEL = 255 + 256 * 255  # label numbers are R + 256 G of 8-bit PNG channels


def _read_rows(path: Path, required: Sequence[str]) -> tuple[list[dict], list[str]]:
    """The rows of a CSV file with a header that holds every `required` column (clear error otherwise)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found (a Broden directory has index.csv, category.csv, label.csv, c_*.csv)"
        )
    with open(path, newline="", encoding="utf-8-sig") as f:  # a UTF-8 BOM (spreadsheet exports) is dropped
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}: expected columns {list(required)}, got header {header} (missing {missing})")
        rows = list(reader)
    for i, row in enumerate(rows):
        if None in row or any(v is None for v in row.values()):
            raise ValueError(f"{path}: row {i + 2} has {len(row) - (None in row)} fields, expected {len(header)}")
    return rows, header


def _int(value: str, path: Path, line: int, column: str) -> int:
    if not re.fullmatch(r"\d+", value.strip()):
        raise ValueError(f"{path}: line {line}, column {column}: expected a non-negative integer, got {value!r}")
    return int(value)


def _float(value: str, path: Path, line: int, column: str) -> float:
    try:
        v = float(value)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{path}: line {line}, column {column}: expected a non-negative number, got {value!r}")
    return v


@dataclass
class Broden:
    """Images and pixel labels of a Broden directory (read_broden).

    Attributes:
        directory: the Broden directory.
        images: [N] paths of the images (directory/images/<image>), in index.csv order.
        splits: [N] their split ("train", "val", ...).
        image_sizes: [N] (ih, iw) from index.csv.
        masks: PixelMasks [N, K] at the label size sh x sw, one concept per label (named by label.csv;
            a name several labels share gets " #<number>"; category = its primary category); scalar
            labels cover their whole image.
        label_numbers: [K] the Broden label number of each concept.
        categories: the categories read, in category.csv order.
        excluded: {label name: why} for the labels of these categories left out: no pixel in the images
            read, or every pixel of every image (an empty or full concept cannot label a unit).
        skipped_images: index.csv rows (0-based) left out because they hold no label of these
            categories (as the original loader does), or are of another split.

    Example:
        >>> b = read_broden("broden1_224", categories=["object", "part"], max_images=500)
        >>> b.masks.words.shape, len(b.images)   # [N, K, ceil(sh sw / 64)] packed masks, N image paths
    """

    directory: Path
    images: list[Path]
    splits: list[str]
    image_sizes: list[tuple[int, int]]
    masks: PixelMasks
    label_numbers: list[int]
    categories: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    skipped_images: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return (
            f"Broden({self.directory}: {len(self)} images, {len(self.masks)} labels of {len(self.categories)} "
            f"categories at {self.masks.height}x{self.masks.width})"
        )

    @property
    def label_size(self) -> tuple[int, int]:
        """(sh, sw) of the labels."""
        return self.masks.height, self.masks.width

    def image_batches(self, batch_size: int = 32, size: int | tuple[int, int] = 224) -> ImageBatches:
        """The images as model inputs, in order: [n, 3, H, W] float32 batches, RGB in [0, 1] resized
        bilinearly (torch, align_corners=False, no antialias) to `size`, then ImageNet-normalized (the
        torchvision models' convention).

        Example:
            >>> maps = inv.capture(model, broden.image_batches(32), ["layer4"], reduce="keep")
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if len(hw) != 2 or not all(isinstance(v, int) and v >= 1 for v in hw):
            raise ValueError(f"size: expected a positive integer or (H, W), got {size!r}")
        return ImageBatches(self.images, batch_size, hw)


@dataclass
class ImageBatches:
    """The images as normalized model inputs, batch after batch (len: the number of batches)."""

    paths: list[Path]
    batch_size: int
    size: tuple[int, int]

    def __len__(self) -> int:
        return -(-len(self.paths) // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for s in range(0, len(self.paths), self.batch_size):
            out = []
            for path in self.paths[s : s + self.batch_size]:
                x = torch.from_numpy(read_image(path)).permute(2, 0, 1)[None].float().div_(255)
                out.append(torch.nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False))
            yield imagenet_normalize(torch.cat(out))


def read_image(path) -> np.ndarray:
    """[H, W, 3] uint8 RGB of an image file (any format Pillow reads)."""
    image = require_pillow()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image not found")
    with image.open(path) as im:
        return np.array(im.convert("RGB"))  # a writable copy


def read_label_png(path, size: tuple[int, int]) -> np.ndarray:
    """[sh, sw] int64 label numbers of a Broden pixel-label PNG (R + 256 G; 0 = unlabelled)."""
    image = require_pillow()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: label image not found")
    with image.open(path) as im:
        if im.mode not in ("RGB", "RGBA"):
            raise ValueError(f"{path}: expected an RGB label PNG (label = R + 256 G), got mode {im.mode}")
        rgb = np.asarray(im.convert("RGB")).astype(np.int64)
    if rgb.shape[:2] != tuple(size):
        raise ValueError(
            f"{path}: expected the label size sh x sw = {size[0]} x {size[1]} of index.csv, got {rgb.shape[0]} x {rgb.shape[1]}"
        )
    return rgb[:, :, 0] + 256 * rgb[:, :, 1]


def read_broden(
    directory,
    categories: Sequence[str] | None = None,
    max_images: int | None = None,
    *,
    split: str | None = None,
    max_memory: int = 2**30,
) -> Broden:
    """Read a Broden directory's pixel labels into PixelMasks (see the module docstring for the format).

    Images are decoded in chunks whose dense masks take at most `max_memory` bytes, then packed 64
    pixels per int64 word; the packed masks ([N, K, ceil(sh sw / 64)] int64) must fit `max_memory`
    too (select categories or images otherwise: all of Broden at 112 x 112 is ~120 GB packed).

    Args:
        directory: the Broden directory.
        categories: category names to read (default: all of category.csv); an unknown one is an error.
        max_images: read the first max_images images (after the selection below; default all).
        split: only images of this split (default: all).
        max_memory: bytes of masks held at a time.

    Returns:
        Broden: .images [N] paths, .masks PixelMasks at sh x sw, .excluded labels, .skipped_images.
        Images holding no label of the categories read are skipped (as the original loader does) and
        listed in .skipped_images; all images read must share one sh x sw.

    Example:
        >>> b = inv.read_broden("broden1_224", ["object", "part"], max_images=2000)
        >>> diss = inv.network_dissection(maps, b.masks, compat="netdissect-lite")
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"directory: expected a Broden directory, got {str(directory)!r} (not a directory)")
    if max_images is not None and (not isinstance(max_images, int) or isinstance(max_images, bool) or max_images < 1):
        raise ValueError(f"max_images: expected a positive integer or None, got {max_images!r}")
    if not isinstance(max_memory, int) or max_memory < 1:
        raise ValueError(f"max_memory: expected a positive number of bytes, got {max_memory!r}")

    cat_rows, _ = _read_rows(root / "category.csv", ["name"])
    all_cats = [r["name"] for r in cat_rows]
    if categories is None:
        cats = all_cats
    else:
        if isinstance(categories, str):
            raise TypeError(f"categories: expected a list of category names, got the string {categories!r}")
        unknown = [c for c in categories if c not in all_cats]
        if unknown or not categories:
            raise ValueError(f"categories: expected names from category.csv {all_cats}, got {list(categories)!r}")
        cats = [c for c in all_cats if c in set(categories)]  # category.csv order, as the original

    label_path = root / "label.csv"
    label_rows, _ = _read_rows(label_path, ["number", "name"])
    label_name, label_syns = {}, {}
    for i, r in enumerate(label_rows):
        number = _int(r["number"], label_path, i + 2, "number")
        if number > MAX_LABEL:
            raise ValueError(
                f"{label_path}: line {i + 2}: label number {number} exceeds {MAX_LABEL:,}, the largest a Broden "
                "label PNG can encode (R + 256 G)"
            )
        if number in label_name:
            raise ValueError(f"{label_path}: line {i + 2}: label number {number} appears twice")
        label_name[number] = r["name"]
        label_syns[number] = r.get("syns") or ""

    # Each label's coverage in each category read: its primary category is the one of highest coverage.
    coverage: dict[int, list[tuple[float, int]]] = {}
    for ci, cat in enumerate(cats):
        path = root / f"c_{cat}.csv"
        rows, _ = _read_rows(path, ["code", "number", "coverage"])
        for i, r in enumerate(rows):
            number = _int(r["number"], path, i + 2, "number")
            if number == 0:
                continue  # the unlabelled code
            if number not in label_name:
                raise ValueError(f"{path}: line {i + 2}: label number {number} is not in label.csv")
            coverage.setdefault(number, []).append((_float(r["coverage"], path, i + 2, "coverage"), ci))
    numbers = sorted(coverage)
    if not numbers:
        raise ValueError(f"{root}: the c_<category>.csv files of categories {cats} list no label")
    primary = {n: cats[max(coverage[n])[1]] for n in numbers}
    column = {n: j for j, n in enumerate(numbers)}

    index_path = root / "index.csv"
    index_rows, header = _read_rows(index_path, list(META))
    missing = [c for c in cats if c not in header]
    if missing:
        raise ValueError(f"{index_path}: expected a column for each category read, got none for {missing}")
    chosen, skipped = [], []
    for i, r in enumerate(index_rows):
        has_data = any(r[c].strip(" ;") for c in cats)
        if not has_data or (split is not None and r["split"] != split):
            skipped.append(i)
        elif max_images is None or len(chosen) < max_images:
            chosen.append(i)
    if not chosen:
        raise ValueError(
            f"{index_path}: no image holds a label of categories {cats}"
            + (f" in split {split!r}" if split is not None else "")
        )
    if max_images is not None:  # rows past the first max_images are not read, not skipped
        skipped = [i for i in skipped if i < chosen[-1]]
    sizes = {}
    for i in chosen:
        line = i + 2
        r = index_rows[i]
        sh, sw = _int(r["sh"], index_path, line, "sh"), _int(r["sw"], index_path, line, "sw")
        sizes.setdefault((sh, sw), r["image"])
        if len(sizes) > 1:
            (a, ia), (b, ib) = list(sizes.items())[:2]
            raise ValueError(
                f"{index_path}: images of different label sizes in one call: {ia!r} is sh x sw = {a[0]} x {a[1]}, "
                f"{ib!r} is {b[0]} x {b[1]}; select images of one size (split, max_images)"
            )
    (sh, sw) = next(iter(sizes))
    if sh * sw == 0:
        raise ValueError(f"{index_path}: expected a positive label size sh x sw, got {sh} x {sw}")
    k, p, n = len(numbers), sh * sw, len(chosen)
    packed = n * k * num_words(p) * 8
    if packed > max_memory:
        raise ValueError(
            f"max_memory: the packed masks of {n} images x {k} labels at {sh} x {sw} take {packed:,} bytes, "
            f"more than max_memory = {max_memory:,}; read fewer categories or images (max_images)"
        )
    lookup = np.full(max(label_name) + 1, -1, dtype=np.int64)
    for number, j in column.items():
        lookup[number] = j
    step = max(1, (max_memory - packed) // (k * p))  # dense chunk + packed masks within max_memory
    words = []
    for s in range(0, n, step):
        rows = chosen[s : s + step]
        dense = torch.zeros(len(rows), k, p, dtype=torch.bool)
        for i, row in enumerate(rows):
            _fill(dense[i], root, index_path, row + 2, index_rows[row], cats, lookup, (sh, sw))
        words.append(pack_bits(dense))
    all_words = torch.cat(words)
    px = popcount(all_words).sum(0).tolist()
    keep = [j for j in range(k) if 0 < px[j] < n * p]
    # Names must be unique: a name label.csv gives to several labels read is suffixed with its number.
    given = [label_name[number] for number in numbers]
    repeated = {x for x in given if given.count(x) > 1}
    names = [f"{x} #{number}" if x in repeated else x for x, number in zip(given, numbers, strict=True)]
    kept = set(keep)
    excluded = {
        names[j]: ("no pixel in the images read" if px[j] == 0 else "every pixel of every image read")
        for j in range(k)
        if j not in kept
    }
    if not keep:
        raise ValueError(f"{root}: no label of categories {cats} has pixel contrast in the {n} images read")
    masks = PixelMasks.from_words(
        all_words[:, keep].contiguous(),
        sh,
        sw,
        [names[j] for j in keep],
        [label_syns[numbers[j]].replace(";", ", ") for j in keep],
        [primary[numbers[j]] for j in keep],
    )
    return Broden(
        directory=root,
        images=[root / "images" / index_rows[i]["image"] for i in chosen],
        splits=[index_rows[i]["split"] for i in chosen],
        image_sizes=[
            (_int(index_rows[i]["ih"], index_path, i + 2, "ih"), _int(index_rows[i]["iw"], index_path, i + 2, "iw"))
            for i in chosen
        ],
        masks=masks,
        label_numbers=[numbers[j] for j in keep],
        categories=list(cats),
        excluded=excluded,
        skipped_images=skipped,
    )


def _fill(dense: torch.Tensor, root: Path, index_path: Path, line: int, row: dict, cats, lookup, size) -> None:
    """Set one image's label pixels in dense [K, sh * sw] bool."""
    p = size[0] * size[1]
    for cat in cats:
        for item in (v.strip() for v in row[cat].split(";")):
            if not item:
                continue
            if re.fullmatch(r"\d+", item):  # a scalar label: the whole image
                number = int(item)
                if number == 0:
                    continue
                j = lookup[number] if number < len(lookup) else -1
                if j < 0:
                    raise ValueError(
                        f"{index_path}: line {line}, column {cat}: label {number} is not a label of the categories read"
                    )
                dense[j] = True
                continue
            labels = read_label_png(root / "images" / item, size).reshape(p)
            pixels = np.flatnonzero(labels)
            values = labels[pixels]
            bad = values >= len(lookup)
            cols = np.where(bad, -1, lookup[np.minimum(values, len(lookup) - 1)])
            if (cols < 0).any():
                raise ValueError(
                    f"{root / 'images' / item}: pixel label {int(values[cols < 0][0])} is not a label of the "
                    f"categories read ({', '.join(cats)})"
                )
            dense[torch.from_numpy(cols), torch.from_numpy(pixels)] = True


def write_broden(
    directory,
    masks: PixelMasks,
    images: np.ndarray,
    *,
    scalar_categories: Sequence[str] = (),
    split: str = "train",
) -> Path:
    """Write images and their PixelMasks as a Broden directory (read_broden reads it back).

    Label k of the masks gets number k + 1; each category is an index.csv column. A category in
    `scalar_categories` is written as scalar labels (its masks must each cover all or none of an
    image); the others as pixel-label PNGs, one layer per set of non-overlapping labels (overlapping
    labels of a category go to further layers). Images are written as PNG (lossless) under images/.

    Args:
        directory: where to write (created; existing files of the same names are replaced).
        masks: PixelMasks of N images at sh x sw.
        images: [N, ih, iw] or [N, ih, iw, 3] uint8 images.
        scalar_categories: categories written as scalar (image-level) labels.
        split: the split column of every image.

    Returns:
        the directory.

    Example:
        >>> write_broden("fashion_broden", masks, images)   # then read_broden("fashion_broden")
    """
    image = require_pillow()
    root = Path(directory)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
        raise ValueError(
            f"images: expected [N, H, W] or [N, H, W, 3] uint8, got {images.dtype} of shape {images.shape}"
        )
    if len(images) != masks.n_images:
        raise ValueError(f"images: expected the {masks.n_images} images of the masks, got {len(images)}")
    cats = list(dict.fromkeys(masks.categories))
    unknown = [c for c in scalar_categories if c not in cats]
    if unknown:
        raise ValueError(f"scalar_categories: expected categories of the masks {cats}, got {unknown}")
    if len(masks) + 1 >= 256 * 256:
        raise ValueError(f"masks: Broden label numbers are R + 256 G < 65,536; got {len(masks)} labels")
    (root / "images").mkdir(parents=True, exist_ok=True)
    dense = masks.to_bool().reshape(masks.n_images, len(masks), -1).numpy()
    sh, sw = masks.height, masks.width
    members = {c: [k for k, kc in enumerate(masks.categories) if kc == c] for c in cats}
    freq = dense.any(2).sum(0)
    cover = dense.sum((0, 2)) / (sh * sw)
    index = []
    for i in range(masks.n_images):
        name = f"image{i:06d}"
        image.fromarray(images[i]).save(root / "images" / f"{name}.png")
        row = {"image": f"{name}.png", "split": split, "ih": images.shape[1], "iw": images.shape[2], "sh": sh, "sw": sw}
        for c in cats:
            present = [k for k in members[c] if dense[i, k].any()]
            if c in scalar_categories:
                partial = [masks.names[k] for k in present if not dense[i, k].all()]
                if partial:
                    raise ValueError(
                        f"scalar_categories: {c!r} label {partial[0]!r} covers part of image {i}; scalar labels cover all of it"
                    )
                row[c] = ";".join(str(k + 1) for k in present)
                continue
            layers: list[np.ndarray] = []
            for k in present:
                spot = next((lay for lay in layers if not (lay[dense[i, k]] != 0).any()), None)
                if spot is None:
                    spot = np.zeros(sh * sw, dtype=np.int64)
                    layers.append(spot)
                spot[dense[i, k]] = k + 1
            files = []
            for li, lay in enumerate(layers):
                rgb = np.zeros((sh * sw, 3), dtype=np.uint8)
                rgb[:, 0], rgb[:, 1] = lay % 256, lay // 256
                files.append(f"{name}_{c}_{li}.png")
                image.fromarray(rgb.reshape(sh, sw, 3)).save(root / "images" / files[-1])
            row[c] = ";".join(files)
        index.append(row)
    _write_csv(root / "index.csv", [*META, *cats], index)
    _write_csv(
        root / "category.csv",
        ["name", "first", "last", "count", "frequency"],
        [
            {
                "name": c,
                "first": members[c][0] + 1,
                "last": members[c][-1] + 1,
                "count": len(members[c]),
                "frequency": int(dense[:, members[c]].any((1, 2)).sum()),
            }
            for c in cats
        ],
    )
    _write_csv(
        root / "label.csv",
        ["number", "name", "category", "frequency", "coverage", "syns"],
        [
            {
                "number": k + 1,
                "name": masks.names[k],
                "category": f"{masks.categories[k]}({int(freq[k])})",
                "frequency": int(freq[k]),
                "coverage": f"{cover[k]:.6f}",
                "syns": "",
            }
            for k in range(len(masks))
        ],
    )
    for c in cats:
        _write_csv(
            root / f"c_{c}.csv",
            ["code", "number", "name", "frequency", "coverage"],
            [
                {
                    "code": code + 1,
                    "number": k + 1,
                    "name": masks.names[k],
                    "frequency": int(freq[k]),
                    "coverage": f"{cover[k]:.6f}",
                }
                for code, k in enumerate(members[c])
            ],
        )
    return root


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
