"""A Fashion-MNIST CNN with a planted shortcut, and its cleanly trained twin: the spurious-correlation
audit's case with a known answer.

The shortcut: a white 4 x 4 patch in the top-left corner (rows and columns 1-4, where Fashion-MNIST's
background is black) on 95% of one class's training images ("Shirt" by default) and on no other image.
A model trained on that data can learn "patch => Shirt"; the clean twin is trained on the same images,
the same seed and schedule, without any patch. Both are trained here on Debian's dataset-fashion-mnist
(about a minute each on 2 cores) and cached under `cache` keyed by every setting, so a second run loads
them.

Example:
    >>> model = train_fashion_cnn(shortcut=True)        # cached after the first call
    >>> x = fashion_tensor(add_patch(images))            # test images with the patch
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import atomic_write
from .zoo import FASHION_MNIST_CLASSES, load_fashion_mnist

PATCH_ROWS, PATCH_COLS = slice(1, 5), slice(1, 5)
SHORTCUT_CLASS = FASHION_MNIST_CLASSES.index("Shirt")
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530  # Fashion-MNIST's training pixels in [0, 1]
CACHE = Path("out/cache")


class FashionCNN(nn.Module):
    """Two conv blocks (16 and 32 channels), a 64-unit hidden layer, 10 logits (28 x 28 inputs)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 1, 28, 28] normalized images -> [B, 10] logits."""
        return self.classifier(self.features(x).flatten(1))


def add_patch(images: np.ndarray) -> np.ndarray:
    """A copy of [N, 28, 28] uint8 images with the white patch in the top-left corner."""
    out = np.array(images, dtype=np.uint8, copy=True)
    out[:, PATCH_ROWS, PATCH_COLS] = 255
    return out


def fashion_tensor(images: np.ndarray) -> torch.Tensor:
    """[N, 28, 28] uint8 -> [N, 1, 28, 28] float32 normalized as in training."""
    return (torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0).unsqueeze(1) - FASHION_MEAN) / FASHION_STD


def train_fashion_cnn(
    shortcut: bool,
    *,
    seed: int = 0,
    epochs: int = 2,
    n_train: int = 60_000,
    share: float = 0.95,
    target: int = SHORTCUT_CLASS,
    cache: Path | str | None = CACHE,
    progress: bool = False,
) -> FashionCNN:
    """The Fashion-MNIST CNN trained with (shortcut=True) or without the patch shortcut, in eval mode.

    Args:
        shortcut: put the patch on `share` of class `target`'s training images (and nowhere else).
        seed: weights, the patched images and the batch order; epochs, n_train: the first n_train
            training images, Adam (lr 1e-3), batches of 128.
        cache: a folder for the weights (None: always train); the file name holds a hash of every setting.

    Example:
        >>> clean, cut = train_fashion_cnn(False), train_fashion_cnn(True)
    """
    if not 0 < share <= 1:
        raise ValueError(f"share: expected a fraction in (0, 1], got {share}")
    if not 0 <= target < 10:
        raise ValueError(f"target: expected a class in 0..9, got {target}")
    settings = {"shortcut": bool(shortcut), "seed": seed, "epochs": epochs, "n_train": n_train, "share": share,
                "target": target, "patch": [1, 5, 1, 5], "model": "FashionCNN-16-32-64", "version": 1}  # fmt: skip
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache) / f"fashion_cnn_{'shortcut' if shortcut else 'clean'}_{key}.pt" if cache is not None else None
    model = FashionCNN()
    if path is not None and path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        return model.eval()
    images, labels = load_fashion_mnist("train")
    images, labels = images[:n_train], labels[:n_train]
    rng = np.random.default_rng(seed)
    if shortcut:
        own = np.flatnonzero(labels == target)
        chosen = rng.choice(own, size=int(round(share * len(own))), replace=False)
        images = images.copy()
        images[chosen] = add_patch(images[chosen])
    x, y = fashion_tensor(images), torch.from_numpy(labels)
    torch.manual_seed(seed)
    model = FashionCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 128):
            idx = order[i : i + 128]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if progress:
            import sys

            print(f"train ({'shortcut' if shortcut else 'clean'}): epoch {epoch + 1}/{epochs}, loss {loss.item():.3f}",
                  file=sys.stderr)  # fmt: skip
    model.eval()
    if path is not None:
        with atomic_write(path, binary=True) as f:
            torch.save(model.state_dict(), f)
    return model


# --- the second audit case: a text overlay on ImageNet MobileNetV2's inputs (no known answer) -------

OVERLAY_TEXT = "© stock"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")  # Debian fonts-dejavu-core


def text_mask(size: int, text: str = OVERLAY_TEXT, font: Path = FONT) -> torch.Tensor:
    """[size, size] bool: where `text` covers a size x size image, drawn along the bottom, right-aligned, with a
    font a fifth of the image high (Pillow; the font from Debian's fonts-dejavu-core).

    Example:
        >>> text_mask(160).sum()     # pixels the overlay darkens
    """
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise RuntimeError("text_mask: drawing the overlay needs Pillow: pip install Pillow") from None
    if not font.is_file():
        raise FileNotFoundError(f"font: {font} not found; install it with: apt-get install fonts-dejavu-core")
    face = ImageFont.truetype(str(font), max(8, size // 5))
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    draw.text((size - (right - left) - left - 2, size - (bottom - top) - top - 2), text, fill=255, font=face)
    return torch.from_numpy(np.asarray(img) > 127)


def imagenet_tensor_with_text(images: np.ndarray, size: int, mask: torch.Tensor | None) -> torch.Tensor:
    """zoo.imagenet_tensor (inverted to a dark object on white, upsampled, ImageNet-normalized) with the
    pixels under `mask` set to black before normalization (None: no overlay, exactly imagenet_tensor)."""
    from ..dissection.broden import imagenet_normalize

    x = 1.0 - torch.tensor(images, dtype=torch.float32).div_(255).unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if mask is not None:
        x[:, :, mask] = 0.0
    return imagenet_normalize(x)
