import pytest
import torch

import invert_fast as inv

CUDA = torch.cuda.is_available() and inv.built_with_cuda()
requires_cuda = pytest.mark.skipif(not CUDA, reason="needs a GPU and an invert_fast build with CUDA kernels")


def tied(shape, levels, dtype=torch.float32, seed=0):
    """Random values with heavy ties: `levels` distinct values (plus +-inf and both zeros)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-(levels // 2), levels - levels // 2, shape, generator=g).to(torch.float64) / 4
    special = torch.rand(shape, generator=g)
    x[special < 0.02] = float("inf")
    x[(special >= 0.02) & (special < 0.04)] = float("-inf")
    x[(special >= 0.04) & (special < 0.06)] = -0.0
    return x.to(dtype)


def random_labels(n, k, density=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, k, generator=g) < density


def objective_case(seed: int, n: int, k: int = 6, d: int = 5):
    """(x [n, d], y [n, k] 0/1, names): concepts from rare to dense and neurons that stress the top samples
    T: a planted rare concept, ties, many zeros, nothing positive (alpha "support" leaves T empty), and from
    the fifth neuron on a large offset (sums by deviations, not by squares)."""
    g = torch.Generator().manual_seed(seed)
    dens = torch.tensor([0.02, 0.1, 0.3, 0.05, 0.2, 0.45])[:k]
    y = (torch.rand(n, k, generator=g) < dens).long()
    x = torch.randn(n, d, generator=g)
    x[:, 0] += 2 * y[:, 0]  # a rare concept
    x[:, 1] = torch.round(x[:, 1] * 2)  # ties
    x[:, 2] = torch.relu(x[:, 2] - 0.5)  # sparse-like: many zeros
    x[:, 3] = -torch.relu(x[:, 3])  # nothing positive
    x[:, 4:] = 100 + 0.01 * x[:, 4:]
    return x, y, [f"c{i}" for i in range(k)]
