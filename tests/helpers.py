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
