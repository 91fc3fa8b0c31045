"""CUDA kernels against the CPU kernels: identical integers and bit-identical AUROC. Skipped without a GPU."""

import numpy as np
import pytest
import torch

import invert_fast as inv

from .helpers import random_labels, requires_cuda, tied

pytestmark = requires_cuda


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 1), (255, 3), (257, 7), (5000, 33), (70_001, 2)])
def test_rank_doubled_equals_cpu(dtype, shape):
    x = tied(shape, levels=13, dtype=dtype)
    assert torch.equal(inv.rank_doubled(x.cuda()).cpu(), inv.rank_doubled(x))


def test_rank_doubled_non_contiguous_and_empty():
    x = tied((600, 80), levels=9)[::2, 1::2]
    assert torch.equal(inv.rank_doubled(x.cuda()).cpu(), inv.rank_doubled(x))
    assert inv.rank_doubled(torch.zeros(0, 3, device="cuda")).shape == (0, 3)


def test_rank_doubled_nan_message_matches_cpu():
    x = torch.randn(10, 4)
    x[[2, 3], 1] = float("nan")
    with pytest.raises(ValueError) as cpu:
        inv.rank_doubled(x)
    with pytest.raises(ValueError) as gpu:
        inv.rank_doubled(x.cuda())
    assert str(cpu.value).splitlines()[0] == str(gpu.value).splitlines()[0]


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_csr_gather_sum_equals_cpu(dtype):
    g = torch.Generator().manual_seed(0)
    values = torch.randint(-(2**30), 2**30, (300, 517), generator=g).to(dtype)
    indices = torch.randint(0, 300, (4000,), generator=g)
    indptr = torch.cat(
        [torch.tensor([0]), torch.sort(torch.randint(0, 4001, (99,), generator=g)).values, torch.tensor([4000])]
    )
    cpu = inv.csr_gather_sum(values, indptr, indices)
    gpu = inv.csr_gather_sum(values.cuda(), indptr.cuda(), indices.cuda())
    assert torch.equal(gpu.cpu(), cpu)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 300\)"):
        inv.csr_gather_sum(values.cuda(), indptr.cuda(), (indices + 1).cuda())


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_auroc_bit_identical_to_cpu(method):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 50, (20_000,), generator=g)
    cs = inv.ConceptSet.from_classes(y, [f"k{i}" for i in range(50)]).with_unions({"u": list(range(10))})
    x = tied((20_000, 300), levels=50)
    cpu = inv.auroc(x, cs, method=method)
    gpu = inv.auroc(x.cuda(), cs, method=method)
    assert gpu.device.type == "cuda"
    np.testing.assert_array_equal(gpu.cpu().numpy(), cpu.numpy())
    dense = random_labels(20_000, 40, density=0.3)
    np.testing.assert_array_equal(
        inv.auroc(x.cuda(), dense, method=method).cpu().numpy(), inv.auroc(x, dense, method=method).numpy()
    )
