"""Sparse activations (core/sparse.py, ops.sparse_rank_doubled): every result equals the dense twin's,
bit for bit, and bad sparse input fails with one line naming the neuron and the entry."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import invert_fast as inv
from invert_fast import ops
from invert_fast.core.sparse import SparseColumns, as_sparse

from .helpers import CUDA


def sparse_data(n, d, density=0.1, seed=0, levels=None, dtype=torch.float32):
    """[N, D] with negatives, ties among the nonzeros (levels), an all-zero column 0, an all-nonzero
    column 1, -0.0 and +-inf entries."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    if levels is not None:
        x = (x * levels).round() / levels
    x = x * (torch.rand(n, d, generator=g) < density)
    x[:, 0] = 0
    if d > 1:
        x[:, 1] = torch.randn(n, generator=g, dtype=torch.float64).round(decimals=1) + 0.05
    if d > 2:
        x[::11, 2] = -0.0
        x[3, 2], x[5, 2] = float("inf"), float("-inf")
    return x.to(dtype)


def stored(x: torch.Tensor, extra_zeros=0.05, seed=1) -> SparseColumns:
    """SparseColumns of x's nonzeros plus some explicit (stored) zeros."""
    g = torch.Generator().manual_seed(seed)
    keep = (x != 0) | (torch.rand(x.shape, generator=g) < extra_zeros)
    r, c = keep.nonzero().unbind(1)
    return SparseColumns.from_coo(r, c, x[r, c], x.shape)


def rows(res):
    return [
        (e.neuron, e.rank, str(e.formula), e.auc, e.p_value, e.log10_p_value, e.p_value_search, e.bound, e.certified)
        for per in res
        for e in per
    ]


def same(a, b):
    # NaN == NaN here: bound and p_value_search are NaN where not asked for.
    return str(rows(a)) == str(rows(b))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("levels", [None, 2])
def test_sparse_ranks_equal_dense_ranks(dtype, levels):
    x = sparse_data(2000, 7, density=0.15, levels=levels, dtype=dtype)
    sc = stored(x)
    r, z, t = ops.sparse_rank_doubled(sc.indptr, sc.indices, sc.values, 2000)
    want, ties = ops.rank_doubled_ties(x)
    dense = z.repeat(2000, 1).int()
    dense[sc.indices, sc.column_of_entries()] = r
    assert torch.equal(dense, want)
    assert torch.equal(t, ties)


def test_tie_terms_bit_identical_beyond_exact_float64():
    # N^3 > 2^53: the tie term is rounded; the sparse kernel adds the same terms in the same order.
    n = 300_000
    g = torch.Generator().manual_seed(3)
    x = ((torch.rand(n, 2, generator=g) < 0.01) * torch.randint(-3, 4, (n, 2), generator=g)).float()
    sc = as_sparse(x.to_sparse())
    _, _, t = ops.sparse_rank_doubled(sc.indptr, sc.indices, sc.values, n)
    assert torch.equal(t, ops.rank_doubled_ties(x)[1])


def test_sparse_rank_edge_cases():
    # No stored entry at all, and a column of only stored zeros: every sample ties at rank N + 1.
    r, z, t = ops.sparse_rank_doubled(torch.tensor([0, 0, 2]), torch.tensor([1, 3]), torch.tensor([0.0, -0.0]), 5)
    assert r.tolist() == [6, 6] and z.tolist() == [6, 6] and t.tolist() == [120.0, 120.0]
    r, z, t = ops.sparse_rank_doubled(torch.tensor([0]), torch.zeros(0, dtype=torch.long), torch.zeros(0), 9)
    assert r.numel() == z.numel() == t.numel() == 0


@pytest.mark.parametrize(
    "rows_, vals, msg",
    [
        ([1, 1], [1.0, 2.0], "neuron 7 stores sample 1 twice (entry 1)"),
        ([1, 5], [1.0, 2.0], "neuron 7 has a stored entry (1) at sample 5, outside [0, 4)"),
        ([1, 2], [1.0, float("nan")], "neuron 7 has a NaN value (stored entry 1, sample 2)"),
        ([2, 1], [1.0, 2.0], "neuron 7 stores its samples out of order"),
    ],
)
def test_sparse_rank_errors_name_neuron_and_entry(rows_, vals, msg):
    with pytest.raises(ValueError, match=None) as e:
        ops.sparse_rank_doubled(torch.tensor([0, 2]), torch.tensor(rows_), torch.tensor(vals), 4, 7)
    assert msg in str(e.value)
    with pytest.raises(ValueError, match="indptr must run from 0 to nnz"):
        ops.sparse_rank_doubled(torch.tensor([0, 1]), torch.tensor(rows_), torch.tensor(vals), 4)


def inputs(x: torch.Tensor):
    """Every accepted sparse form of x."""
    return {
        "coo": x.to_sparse(),
        "csr": x.to_sparse_csr(),
        "csc": x.to_sparse_csc(),
        "scipy_csr": sp.csr_matrix(x.numpy()),
        "scipy_coo_array": sp.coo_array(x.numpy()),
        "stored_zeros": stored(x),
    }


@pytest.fixture(scope="module")
def case():
    x = sparse_data(1500, 6, density=0.08, levels=4)
    g = torch.Generator().manual_seed(5)
    y = torch.rand(1500, 10, generator=g) < 0.2
    y[:, 3] = y[:, 2]  # equal masks: the distinct rule
    return x, inv.ConceptSet(y)


@pytest.mark.parametrize("form", sorted(inputs(torch.zeros(2, 2))))
def test_explain_and_auroc_identical_for_every_sparse_form(case, form):
    x, cs = case
    want = inv.explain(x, cs, L=3, B=4, permutations=4)
    got = inv.explain(inputs(x)[form], cs, L=3, B=4, permutations=4)
    assert same(got, want)
    assert torch.equal(inv.auroc(inputs(x)[form], cs).nan_to_num(-1), inv.auroc(x, cs).nan_to_num(-1))
    assert torch.equal(
        inv.score(inputs(x)[form], cs, ["c0 | c1", "~c2"]).nan_to_num(-1),
        inv.score(x, cs, ["c0 | c1", "~c2"]).nan_to_num(-1),
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(mode="negative", min_fraction=0.02),
        dict(distinct=False, limit_search=5),
        dict(search="exact", L=2),
        dict(certify=True, L=2, B=3),
        dict(permutations=5, groups=torch.arange(1500) // 10, seed=3),
        dict(max_memory=2_000_000),  # one neuron per batch: batch offsets
    ],
)
def test_explain_options_identical(case, kw):
    x, cs = case
    kw = {"L": 3, "B": 4, **kw}
    assert same(inv.explain(stored(x), cs, **kw), inv.explain(x, cs, **kw))


def test_sparse_errors_name_layer_neurons():
    x = torch.zeros(10, 700)
    x[4, 650] = float("nan")
    with pytest.raises(ValueError, match="neuron 650 has a NaN value"):
        inv.explain(x.to_sparse(), inv.ConceptSet(torch.rand(10, 3) < 0.5), max_memory=200_000)
    idx = torch.tensor([[1, 1], [0, 0]])
    dup = torch.sparse_coo_tensor(idx, torch.tensor([1.0, 2.0]), (4, 2))
    with pytest.raises(ValueError, match=r"entries 0 and 1 both store \(sample 1, neuron 0\)"):
        inv.explain(dup, inv.ConceptSet(torch.rand(4, 2) < 0.5))
    with pytest.raises(ValueError, match=r"neuron index 5, outside \[0, 2\)"):
        SparseColumns.from_coo([0], [5], [1.0], (4, 2))


def test_explain_to_file_and_checkpoint_with_sparse(tmp_path, case):
    x, cs = case
    want = inv.explain(x, cs, L=2, B=3)
    got = inv.explain_to_file(x.to_sparse(), cs, tmp_path / "a.csv", checkpoint=tmp_path / "ck", chunk=4, L=2, B=3)
    assert same(got, want)
    again = inv.explain_to_file(x.to_sparse(), cs, tmp_path / "b.csv", checkpoint=tmp_path / "ck", chunk=4, L=2, B=3)
    assert same(again, want)
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_compat_takes_sparse(case, tmp_path):
    x, cs = case
    from invert_fast.compat import Invert

    torch.save(cs.dense().float(), tmp_path / "labels.tnsr")
    (tmp_path / "d.json").write_text(json.dumps({str(k): {"offset": s} for k, s in enumerate(cs.names)}))
    a = Invert()
    a.load_concept_labels(tmp_path / "labels.tnsr", tmp_path / "d.json")
    got = a.explain_representation(x.to_sparse(), L=2, B=2)
    want = a.explain_representation(x, L=2, B=2)
    assert [[(str(r["formula"]), r["metric"]) for r in u] for u in got] == [
        [(str(r["formula"]), r["metric"]) for r in u] for u in want
    ]
    f = want[2][0]["formula"]
    assert a.get_p_value(x[:, 2:3].to_sparse(), f) == a.get_p_value(x[:, 2], f)


def test_npz_and_sparse_pt_stores(tmp_path, case):
    x, cs = case
    want = inv.explain(x, cs, L=2, B=3)
    sp.save_npz(tmp_path / "acts.npz", sp.csc_matrix(x.numpy()))
    torch.save(x.to_sparse_csr(), tmp_path / "acts.pt")
    for name in ("acts.npz", "acts.pt"):
        store = inv.NeuronStore(tmp_path / name)
        assert store.sparse and store.shape == tuple(x.shape) and store.nnz == int((x != 0).sum())
        assert same(inv.explain(store, cs, L=2, B=3), want)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read .*bad.npz as a scipy.sparse .npz"):
        inv.NeuronStore(tmp_path / "bad.npz")


@pytest.mark.skipif(not CUDA, reason="needs a GPU")
def test_sparse_ranks_and_explain_identical_on_cuda(case):
    x, cs = case
    sc = stored(x)
    cpu = ops.sparse_rank_doubled(sc.indptr, sc.indices, sc.values, x.shape[0])
    gpu = ops.sparse_rank_doubled(sc.indptr.cuda(), sc.indices.cuda(), sc.values.cuda(), x.shape[0])
    for a, b in zip(cpu, gpu, strict=True):
        assert torch.equal(a, b.cpu())
    assert same(
        inv.explain(sc, cs, L=3, B=4, device="cuda", permutations=3), inv.explain(x, cs, L=3, B=4, permutations=3)
    )
    with pytest.raises(ValueError, match="stores sample 1 twice"):
        ops.sparse_rank_doubled(torch.tensor([0, 2]).cuda(), torch.tensor([1, 1]).cuda(), torch.ones(2).cuda(), 4)


def test_sparse_columns_slicing_and_dense():
    x = sparse_data(50, 5)
    sc = as_sparse(x.to_sparse())
    assert torch.equal(sc.dense(), x) and sc.nnz == int((x != 0).sum())
    part = sc.columns(1, 4)
    assert part.first == 1 and torch.equal(part.dense(), x[:, 1:4])
    assert repr(sc).startswith("SparseColumns([50, 5]")
    with pytest.raises(ValueError, match="expected a 2-D sparse tensor"):
        as_sparse(torch.zeros(3, 2, 2).to_sparse())
    with pytest.raises(TypeError, match="expected numbers, got an array of dtype complex64"):
        as_sparse(sp.csr_matrix(np.ones((2, 2), dtype=np.complex64)))
    ints = as_sparse(sp.csr_matrix(np.array([[0, 3], [2, 0]], dtype=np.int32)))
    assert ints.dtype == torch.float64 and ints.dense().tolist() == [[0.0, 3.0], [2.0, 0.0]]
