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


def test_rank_ties_equal_cpu():
    x = tied((30_000, 5), levels=40)
    r_cpu, t_cpu = inv.rank_doubled_ties(x)
    r_gpu, t_gpu = inv.rank_doubled_ties(x.cuda())
    assert torch.equal(r_gpu.cpu(), r_cpu) and torch.equal(t_gpu.cpu(), t_cpu)


def test_weighted_row_sums_and_step_select_equal_cpu():
    from invert_fast import ops

    g = torch.Generator().manual_seed(4)
    table = torch.rand(50, 17, generator=g) < 0.3
    idx = torch.randint(0, 50, (400,), generator=g)
    w = torch.randint(0, 2**40, (400,), generator=g)
    ptr = torch.cat(
        [torch.tensor([0]), torch.sort(torch.randint(0, 401, (30,), generator=g)).values, torch.tensor([400])]
    )
    cpu = ops.weighted_row_sums(ptr, idx, w, table)
    assert torch.equal(ops.weighted_row_sums(ptr.cuda(), idx.cuda(), w.cuda(), table.cuda()).cpu(), cpu)
    d, b, k, n = 6, 4, 9, 500
    xs = torch.randint(0, 5000, (d, b, k), generator=g)
    xp = torch.randint(0, 60, (d, b, k), generator=g)
    bs, bp = torch.randint(0, 9000, (d, b), generator=g), torch.randint(20, 90, (d, b), generator=g)
    bv = torch.rand(d, b, generator=g) < 0.9
    cs, cp = torch.randint(0, 9000, (d, k), generator=g), torch.randint(1, 200, (k,), generator=g)
    ext = torch.rand(d, 2 * k, generator=g) < 0.8
    for shift in (0, 16):
        x = (xs << shift) + xp if shift else xs
        x_p = torch.empty(0, dtype=torch.long) if shift else xp
        args = (x, x_p, shift, bs, bp, bv, cs, cp, ext)
        cpu = ops.beam_step_select(*args, n, 1, 250, 1.0, 7)
        gpu = ops.beam_step_select(*(t.cuda() if isinstance(t, torch.Tensor) else t for t in args), n, 1, 250, 1.0, 7)
        for a, c in zip(gpu, cpu, strict=True):
            assert torch.equal(a.cpu(), c)


def rows(res):
    """Exported rows with NaN as None, so equal results compare equal."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in res.records()]


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_explain_identical_labels_on_cuda(mode):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 30, (5000,), generator=g)
    cs = inv.ConceptSet.from_classes(y, [f"k{i}" for i in range(30)]).with_unions({"u": list(range(5)), "v": [7, 9]})
    x = tied((5000, 40), levels=30)
    cpu = inv.explain(x, cs, L=3, B=5, mode=mode)
    gpu = inv.explain(x.cuda(), cs, L=3, B=5, mode=mode)
    assert rows(cpu) == rows(gpu)
    dense = random_labels(3000, 20, density=0.3)
    assert rows(inv.explain(x[:3000], dense, L=3, B=4)) == rows(inv.explain(x[:3000], dense, L=3, B=4, device="cuda"))


@pytest.mark.parametrize("objective", ["iou", "f1", "correlation", "cosine"])
@pytest.mark.parametrize("alpha", [0.02, "support"])
def test_search_by_objective_identical_on_cuda(objective, alpha):
    # The top samples' cutoff (ops.top_values), T's region counts, the scaled activations' sums and the
    # objective's kernels (correlation and cosine: float scores rounded one by one, csrc/rounding.h), with
    # permutations; dense and sparse input.
    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, 30, (5000,), generator=g)
    cs = inv.ConceptSet.from_classes(y, [f"k{i}" for i in range(30)]).with_unions({"u": list(range(5)), "v": [7, 9]})
    x = tied((5000, 24), levels=30) - 10
    kw = {"L": 3, "B": 5, "objective": objective, "alpha": alpha, "permutations": 5}
    cpu = inv.explain(x, cs, **kw)
    assert rows(cpu) == rows(inv.explain(x.cuda(), cs, **kw))
    assert rows(cpu) == rows(inv.explain(x.to_sparse().cuda(), cs, **kw))


@pytest.mark.parametrize("distinct", [True, False])
def test_distinct_tie_rules_and_permutations_identical_on_cuda(distinct):
    # Concepts with duplicates and nested unions (equal masks), odd limit_search (c / ~c ties at the
    # cut), both modes, and the permutation test: every column of the exported rows equal to the CPU's.
    g = torch.Generator().manual_seed(1)
    base = torch.rand(4000, 6, generator=g) < 0.2
    y = torch.cat([base, base[:, :1], base[:, :2].any(1, keepdim=True), ~base[:, 3:4]], 1)
    x = tied((4000, 24), levels=20)
    for kw in (dict(limit_search=3), dict(limit_search=5, mode="negative", max_fraction=0.8), dict()):
        kw = dict(L=3, B=6, distinct=distinct, permutations=7, seed=3, **kw)
        cpu = inv.explain(x, y, **kw)
        gpu = inv.explain(x.cuda(), y, **kw)
        assert rows(cpu) == rows(gpu)
    groups = torch.arange(4000) // 8
    kw = dict(L=2, B=3, permutations=5, groups=groups)
    assert rows(inv.explain(x, y, **kw)) == rows(inv.explain(x, y, device="cuda", **kw))


def test_pair_sums_and_pair_step_select_equal_cpu():
    from invert_fast import ops

    g = torch.Generator().manual_seed(4)
    y = torch.randint(0, 40, (3000,), generator=g)
    cs = inv.ConceptSet.from_classes(y, [f"k{i}" for i in range(40)]).with_unions({"u": list(range(9)), "v": [3, 30]})
    from invert_fast.core.space import RegionSpace

    space = RegionSpace(cs, "auto")
    w = torch.randint(0, 2**40, (space.regions.num_regions, 5), generator=g)
    indptr, concepts = space.region_csr()
    cpu = ops.pair_sums(w, indptr, concepts, len(cs))
    gpu = ops.pair_sums(w.cuda(), indptr.cuda(), concepts.cuda(), len(cs))
    assert torch.equal(cpu, gpu.cpu())
    x = tied((3000, 6), levels=25)
    for kw in (dict(L=2, B=5), dict(L=3, B=4, mode="negative", min_fraction=0.01), dict(L=2, B=3, max_fraction=0.9)):
        assert rows(inv.explain(x, cs, search="exact", **kw)) == rows(inv.explain(x.cuda(), cs, search="exact", **kw))
        assert rows(inv.explain(x, cs, certify=True, **kw)) == rows(inv.explain(x.cuda(), cs, certify=True, **kw))


def test_and_popcount_equals_cpu():
    g = torch.Generator().manual_seed(5)
    for n, a, k, w in [(1, 1, 1, 1), (300, 70, 33, 13), (40, 3, 2, 197)]:
        x = torch.randint(-(2**62), 2**62, (n, a, w), generator=g)
        y = torch.randint(-(2**62), 2**62, (n, k, w), generator=g)
        assert torch.equal(inv.and_popcount(x.cuda(), y.cuda()).cpu(), inv.and_popcount(x, y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_upsample_threshold_and_top_values_equal_cpu(dtype):
    from invert_fast import ops

    g = torch.Generator().manual_seed(6)
    for (h, w), (hh, ww) in [((14, 14), (28, 28)), ((5, 5), (28, 28)), ((7, 3), (16, 9)), ((1, 1), (4, 4))]:
        x = (torch.randint(0, 5, (50, 9, h, w), generator=g) / 4).to(dtype)  # ties: values land on thresholds
        x[0, 0, 0, 0] = float("inf")
        th = inv.quantile_thresholds(x, 0.05)
        a, b = ops.upsample_threshold(x, th, hh, ww), ops.upsample_threshold(x.cuda(), th.cuda(), hh, ww)
        assert torch.equal(a[0], b[0].cpu()) and torch.equal(a[1], b[1].cpu())
        assert torch.equal(inv.quantile_thresholds(x.cuda(), 0.05).cpu(), th)


def test_dissection_and_compositional_equal_cpu():
    g = torch.Generator().manual_seed(7)
    maps = torch.randn(200, 12, 7, 7, generator=g).relu()
    masks = inv.PixelMasks(torch.rand(200, 6, 28, 28, generator=g) < 0.2, [f"c{i}" for i in range(6)])
    cpu = inv.network_dissection(maps, masks)
    gpu = inv.network_dissection(maps.cuda(), masks, device="cuda")
    assert torch.equal(cpu.intersection, gpu.intersection.cpu()) and torch.equal(cpu.union, gpu.union.cpu())
    assert torch.equal(cpu.thresholds, gpu.thresholds.cpu())
    for penalty in (0.0, 0.01):  # the one search, Mu & Andreas' grammar, with and without a length penalty
        c = inv.compositional_explain(maps, masks, length=3, beam=4, length_penalty=penalty)
        d = inv.compositional_explain(maps.cuda(), masks, length=3, beam=4, device="cuda", length_penalty=penalty)
        assert [[(str(x.formula), x.intersection, x.union) for x in u] for u in c] == [
            [(str(x.formula), x.intersection, x.union) for x in u] for u in d
        ]
