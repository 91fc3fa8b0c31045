"""inv.auroc against exact pair counting (reference.py), scikit-learn and scipy, on tied inputs."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu, rankdata
from sklearn.metrics import roc_auc_score

import invert_fast as inv
from invert_fast.reference import auroc_pairs, auroc_reference

from .helpers import random_labels, tied

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def assert_same(actual: torch.Tensor, expected) -> None:
    """Bit equality, NaN matching NaN."""
    exp = torch.tensor(expected, dtype=torch.float64)
    assert actual.shape == exp.shape
    assert torch.equal(actual.isnan(), exp.isnan())
    assert torch.equal(actual.nan_to_num(-1.0), exp.nan_to_num(-1.0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["auto", "sparse", "dense"])
def test_equals_pair_counting_exactly(dtype, method):
    x = tied((61, 7), levels=5, dtype=dtype, seed=1)
    y = random_labels(61, 11, density=0.35, seed=2)
    y[:, 3] = False  # empty concept
    y[:, 4] = True  # full concept
    got = inv.auroc(x, y, method=method)
    assert got.dtype == torch.float64
    assert_same(got, auroc_reference(x.double().tolist(), y.int().tolist()))


@pytest.mark.parametrize("seed", range(4))
def test_matches_sklearn_and_mannwhitney(seed):
    g = torch.Generator().manual_seed(seed)
    n, d, k = 500 + seed * 37, 9, 13
    x = torch.randint(0, 6, (n, d), generator=g).float()
    y = random_labels(n, k, density=0.1 + 0.1 * seed, seed=seed)
    got = inv.auroc(x.numpy(), y.numpy())
    for j in range(d):
        for c in range(k):
            yc, xj = y[:, c].numpy(), x[:, j].numpy()
            assert got[j, c].item() == pytest.approx(roc_auc_score(yc, xj), abs=1e-14)
            u = mannwhitneyu(xj[yc], xj[~yc]).statistic
            assert got[j, c].item() == pytest.approx(u / (yc.sum() * (~yc).sum()), abs=1e-14)


def test_is_the_correctly_rounded_rational():
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 30, (997, 3), generator=g).double()
    y = random_labels(997, 5, density=0.37, seed=5)
    got = inv.auroc(x, y)
    for j in range(3):
        for c in range(5):
            exact = auroc_pairs(x[:, j].tolist(), y[:, c].tolist())
            assert got[j, c].item() == float(exact)  # float(Fraction) rounds correctly


def test_sparse_classes_and_unions_match_dense_path():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 40, (2000,), generator=g)
    cs = inv.ConceptSet.from_classes(y, [f"k{i}" for i in range(40)])
    cs = cs.with_unions({f"u{i}": [f"k{j}" for j in range(i, i + 2 + i % 7)] for i in range(20)})
    assert cs.regions().num_regions == 40
    x = torch.randint(0, 40, (2000, 33), generator=g).float()  # finite: scikit-learn rejects inf
    sparse = inv.auroc(x, cs, method="sparse")
    dense = inv.auroc(x, cs, method="dense")
    assert torch.equal(sparse, dense)
    expected = [[roc_auc_score(cs.mask(c).numpy(), x[:, j].numpy()) for c in range(len(cs))] for j in range(33)]
    np.testing.assert_allclose(sparse.numpy(), expected, rtol=0, atol=1e-14)


def test_neuron_batches_give_the_same_result():
    x = tied((300, 50), levels=11)
    y = random_labels(300, 20)
    assert torch.equal(inv.auroc(x, y, max_memory=1), inv.auroc(x, y))


@pytest.mark.parametrize("layout", ["transposed", "strided", "numpy_fortran"])
def test_non_contiguous_inputs(layout):
    base = tied((200, 30), levels=9, seed=4)
    y = random_labels(200, 6, seed=4)
    if layout == "transposed":
        x = base.t().contiguous().t()
    elif layout == "strided":
        x = tied((400, 60), levels=9, seed=4)[::2, ::2]
        base = x.contiguous()
    else:
        x = np.asfortranarray(base.numpy())
    assert torch.equal(inv.auroc(x, y), inv.auroc(base.contiguous(), y))


def test_integer_activations_widen_exactly():
    x = torch.tensor([[3], [1], [2], [2]], dtype=torch.int64)
    assert inv.auroc(x, [[1], [0], [1], [0]]).item() == 0.875


@pytest.mark.slow
def test_beyond_2_pow_24_samples():
    n = 2**24 + 5
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 5000, (n, 1), generator=g).float()
    y = torch.stack([torch.arange(n) % 3 == 0, torch.rand(n, generator=g) < 0.001], 1)
    got = inv.auroc(x, y)
    r2 = (2 * rankdata(x[:, 0].numpy())).astype(np.int64)  # exact in float64, summed in int64
    for c in range(2):
        m = y[:, c].numpy()
        p = int(m.sum())
        num, den = int(r2[m].sum()) - p * (p + 1), 2 * p * (n - p)
        assert got[0, c].item() == float(Fraction(num, den))


def test_empty_and_full_concepts_are_nan():
    got = inv.auroc(torch.randn(5, 2), [[0, 1], [0, 1], [0, 1], [0, 1], [0, 1]])
    assert got.isnan().all()


def test_bad_inputs_have_clear_errors():
    x = torch.randn(6, 2)
    with pytest.raises(ValueError, match=r"labels: expected only 0 and 1, got 1 other value\(s\), e.g. 2"):
        inv.auroc(x, [[0], [1], [2], [0], [1], [0]])
    with pytest.raises(ValueError, match="labels: expected 6 samples"):
        inv.auroc(x, [[0], [1]])
    with pytest.raises(ValueError, match=r"activations: expected a 2-D array .* got shape \(6,\) \(use x\[:, None\]"):
        inv.auroc(x[:, 0], [[0]] * 6)
    xn = x.clone()
    xn[2, 1] = math.nan
    with pytest.raises(ValueError, match="neuron 1 has 1 NaN"):
        inv.auroc(xn, [[0], [1], [1], [0], [1], [0]])
    with pytest.raises(ValueError, match="labels: expected only 0 and 1, got 1 other value"):
        inv.auroc(x, np.array([[0.0], [1.0], [np.nan], [0.0], [1.0], [0.0]]))
    with pytest.raises(ValueError, match="method: expected one of"):
        inv.auroc(x, [[0], [1], [1], [0], [1], [0]], method="fast")
    with pytest.raises(ValueError, match="max_memory: expected an integer >= 1, got 0"):
        inv.auroc(x, [[0], [1], [1], [0], [1], [0]], max_memory=0)
    with pytest.raises(TypeError, match="activations: expected a real floating or integer dtype"):
        inv.auroc(torch.zeros(6, 1, dtype=torch.complex64), [[0], [1], [1], [0], [1], [0]])
    with pytest.raises(TypeError, match="activations: expected a torch.Tensor or numpy.ndarray, got str"):
        inv.auroc("x", [[0]])


@pytest.mark.skipif(inv.built_with_cuda(), reason="checks the CPU-only build's message")
def test_cuda_tensor_on_cpu_build_says_how_to_rebuild():
    class FakeCuda:
        device = torch.device("cuda")

    with pytest.raises(RuntimeError, match="INVERT_FAST_CUDA=1 pip install"):
        inv.ops.check_device(FakeCuda(), "auroc")
