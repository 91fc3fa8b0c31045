"""pytest-benchmark suite at small, representative sizes (the bench_*.py scripts print the full-size
tables). Not part of the default test run (pyproject's testpaths is tests/):

    pytest benchmarks/ --benchmark-only --benchmark-json=bench.json
    pytest benchmarks/ --benchmark-only --benchmark-compare=0001   # against a saved run (--benchmark-autosave)
"""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import shapes  # noqa: E402

N = 5_000  # samples
D = 64  # neurons


@pytest.fixture(scope="session")
def imagenet_case():
    """ImageNet shape at 1/10 scale: 100 classes + 47 unions, N = 5,000, tied float32 activations."""
    return shapes.tied_activations(N, D), shapes.imagenet_like_concepts(N, 100, 47)


@pytest.fixture(scope="session")
def dense_case():
    """Dense multi-label: 100 concepts of 2-40% density (every sample its own region)."""
    return shapes.tied_activations(N, D), shapes.dense_concepts(N, 100)


@pytest.fixture(scope="session")
def dissection_case():
    """Conv maps [200, 32, 7, 7] and pixel masks [200, 12, 28, 28] (random blobs), seeded."""
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(200, 32, 7, 7, generator=g).relu()
    low = torch.rand(200, 12, 7, 7, generator=g) < 0.2
    masks = torch.nn.functional.interpolate(low.float(), size=(28, 28), mode="nearest").bool()
    return maps, masks
