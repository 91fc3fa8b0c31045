"""csr_gather_sum (csrc/cpu/csr_gather_sum_cpu.cpp) against a plain Python loop."""

import pytest
import torch

import invert_fast as inv


def naive(values, indptr, indices):
    rows = []
    for k in range(len(indptr) - 1):
        acc = [0] * values.shape[1]
        for j in range(indptr[k], indptr[k + 1]):
            acc = [a + int(v) for a, v in zip(acc, values[indices[j]].tolist(), strict=True)]
        rows.append(acc)
    return rows


def random_csr(m, k, nnz, seed=0):
    g = torch.Generator().manual_seed(seed)
    indices = torch.randint(0, m, (nnz,), generator=g)
    cuts = torch.sort(torch.randint(0, nnz + 1, (k - 1,), generator=g)).values
    indptr = torch.cat([torch.tensor([0]), cuts, torch.tensor([nnz])])
    return indptr, indices


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("m,c,k,nnz", [(1, 1, 1, 1), (7, 3, 5, 0), (50, 13, 9, 120), (200, 70, 31, 900)])
def test_matches_naive(dtype, m, c, k, nnz):
    g = torch.Generator().manual_seed(m + c)
    values = torch.randint(-(2**30), 2**30, (m, c), generator=g).to(dtype)
    indptr, indices = random_csr(m, k, nnz)
    out = inv.csr_gather_sum(values, indptr, indices)
    assert out.dtype == torch.int64 and out.shape == (k, c)
    assert out.tolist() == naive(values, indptr.tolist(), indices.tolist())


def test_int64_sums_do_not_overflow_int32():
    values = torch.full((4, 2), 2**31 - 1, dtype=torch.int32)
    out = inv.csr_gather_sum(values, torch.tensor([0, 4]), torch.arange(4))
    assert out.tolist() == [[4 * (2**31 - 1)] * 2]


def test_non_contiguous_values():
    values = torch.arange(60, dtype=torch.int32).reshape(6, 10)[:, ::2]
    out = inv.csr_gather_sum(values, torch.tensor([0, 2, 3]), torch.tensor([5, 0, 3]))
    assert out.tolist() == naive(values.contiguous(), [0, 2, 3], [5, 0, 3])


def test_bad_csr_is_an_error():
    v = torch.zeros(3, 2, dtype=torch.int32)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 3\), got values from 0 to 3"):
        inv.csr_gather_sum(v, torch.tensor([0, 2]), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="non-decreasing"):
        inv.csr_gather_sum(v, torch.tensor([0, 2, 1, 2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="end at nnz = 2"):
        inv.csr_gather_sum(v, torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="int32 or int64, got Float"):
        inv.csr_gather_sum(v.float(), torch.tensor([0, 1]), torch.tensor([0]))
