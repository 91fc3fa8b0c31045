"""AUROC matrix (neurons x concepts): invert_fast.auroc vs the plain float64 rank-sum matmul."""

import baselines
import pytest
import torch

import invert_fast as inv


@pytest.mark.benchmark(group="auroc matrix")
def test_auroc_invert_fast(benchmark, imagenet_case):
    x, cs = imagenet_case
    cs.regions()
    auc = benchmark(inv.auroc, x, cs)
    assert auc.shape == (x.shape[1], len(cs))


@pytest.mark.benchmark(group="auroc matrix")
def test_auroc_torch_matmul_peer(benchmark, imagenet_case):
    x, cs = imagenet_case
    y = cs.dense()
    auc = benchmark(baselines.torch_matmul_auroc, x, y)
    assert torch.allclose(auc, inv.auroc(x, cs).double(), atol=1e-9, equal_nan=True)
