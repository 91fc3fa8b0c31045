"""rank_doubled (csrc/cpu/rank_doubled_cpu.cpp) against scipy's rankdata and the pure-Python reference."""

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

import invert_fast as inv
from invert_fast.reference import doubled_midranks

from .helpers import tied

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def scipy_doubled(x: torch.Tensor) -> np.ndarray:
    return (2 * rankdata(x.double().numpy(), axis=0)).astype(np.int64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (37, 5), (1000, 67), (4097, 3)])
def test_matches_scipy_with_ties(dtype, shape):
    x = tied(shape, levels=7, dtype=dtype)
    r = inv.rank_doubled(x)
    assert r.dtype == torch.int32 and r.shape == shape
    np.testing.assert_array_equal(r.numpy(), scipy_doubled(x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tie_term_matches_group_counts(dtype):
    x = tied((2000, 9), levels=11, dtype=dtype, seed=7)
    ranks, ties = inv.rank_doubled_ties(x)
    assert torch.equal(ranks, inv.rank_doubled(x)) and ties.dtype == torch.float64
    for d in range(9):
        _, t = np.unique(x[:, d].double().numpy(), return_counts=True)  # -0.0 == 0.0 in np.unique too
        assert ties[d].item() == float((t**3 - t).sum())


def test_matches_reference_small():
    x = tied((25, 4), levels=5, dtype=torch.float32, seed=3)
    r = inv.rank_doubled(x)
    for d in range(4):
        assert r[:, d].tolist() == doubled_midranks(x[:, d].tolist())


def test_no_ties_is_a_permutation():
    x = torch.randn(5000, 3, dtype=torch.float64)
    r = inv.rank_doubled(x)
    for d in range(3):
        assert sorted(r[:, d].tolist()) == list(range(2, 2 * 5000 + 1, 2))


def test_zero_signs_tie_and_infinities_order():
    x = torch.tensor([[-0.0], [0.0], [-1.0], [float("inf")], [float("-inf")], [1e-45]])
    for dtype in (torch.float32, torch.float64):
        assert inv.rank_doubled(x.to(dtype))[:, 0].tolist() == [7, 7, 4, 12, 2, 10]


def test_precision_is_the_inputs_own():
    x = torch.tensor([[1.0], [1.0 + 1e-12], [1.0]], dtype=torch.float64)
    assert inv.rank_doubled(x)[:, 0].tolist() == [3, 6, 3]
    # the same values rounded to float32 tie
    assert inv.rank_doubled(x.float())[:, 0].tolist() == [4, 4, 4]


@pytest.mark.parametrize("layout", ["transposed", "sliced", "expanded"])
def test_non_contiguous(layout):
    base = tied((300, 40), levels=9)
    if layout == "transposed":
        x = base.t().contiguous().t()
    elif layout == "sliced":
        x = tied((600, 80), levels=9)[::2, 1::2]
    else:
        x = base[:, :1].expand(300, 5)
    assert not x.is_contiguous()
    np.testing.assert_array_equal(inv.rank_doubled(x).numpy(), scipy_doubled(x.contiguous()))


def test_empty_inputs():
    assert inv.rank_doubled(torch.zeros(0, 4)).shape == (0, 4)
    assert inv.rank_doubled(torch.zeros(4, 0)).shape == (4, 0)


def test_nan_names_neuron_and_count():
    x = torch.randn(10, 6)
    x[[1, 4, 7], 3] = float("nan")
    x[2, 5] = float("nan")
    with pytest.raises(ValueError, match=r"neuron 3 has 3 NaN value\(s\) among 10 samples \(2 neuron"):
        inv.rank_doubled(x)


def test_bad_dtype_and_shape():
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64, got Int"):
        inv.rank_doubled(torch.zeros(3, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"2-D \[N samples, D neurons\], got 1-D"):
        inv.rank_doubled(torch.zeros(3))


@pytest.mark.slow
def test_beyond_float32_exact_integers():
    n = 2**24 + 3  # float32 can no longer count these ranks exactly
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 1000, (n, 1), generator=g).float()
    r = inv.rank_doubled(x)[:, 0].numpy()
    expected = (2 * rankdata(x[:, 0].numpy())).astype(np.int64)
    np.testing.assert_array_equal(r, expected)
