"""The products behind one beam-search step: weighted_row_sums, beam_step_select and both paths of
_Space.masked_sums, against plain torch arithmetic."""

import pytest
import torch

import invert_fast as inv
from invert_fast import ops
from invert_fast.core.order import packed_rows
from invert_fast.core.params import size_bounds
from invert_fast.core.space import RegionSpace as _Space

from .helpers import random_labels


def test_weighted_row_sums_matches_naive():
    g = torch.Generator().manual_seed(0)
    table = torch.rand(40, 13, generator=g) < 0.4
    indices = torch.randint(0, 40, (300,), generator=g)
    weights = torch.randint(-(2**40), 2**40, (300,), generator=g)
    indptr = torch.cat(
        [torch.tensor([0]), torch.sort(torch.randint(0, 301, (24,), generator=g)).values, torch.tensor([300])]
    )
    out = ops.weighted_row_sums(indptr, indices, weights, table)
    expected = torch.stack(
        [(weights[a:b, None] * table[indices[a:b]].long()).sum(0) for a, b in zip(indptr[:-1], indptr[1:], strict=True)]
    )
    assert torch.equal(out, expected)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 40\)"):
        ops.weighted_row_sums(indptr, indices + 1, weights, table)


@pytest.mark.parametrize("method", ["sparse", "dense"])
@pytest.mark.parametrize("path", ["beam", "concept"])
@pytest.mark.parametrize("classes", [True, False])
def test_masked_sums_paths_match_naive(method, path, classes):
    g = torch.Generator().manual_seed(1)
    n = 300
    if classes:
        y = torch.randint(0, 12, (n,), generator=g)
        cs = inv.ConceptSet.from_classes(y, [f"k{i}" for i in range(12)]).with_unions(
            {"u": [0, 1, 2], "v": list(range(3, 11))}
        )
    else:
        cs = inv.ConceptSet(random_labels(n, 9, density=0.3, seed=2))
    space = _Space(cs, method)
    gr = space.regions.num_regions
    weights = torch.randint(0, 2**30, (gr, 5), generator=g)
    mask = torch.rand(5, 3, gr, generator=g) < torch.tensor([0.1, 0.5, 0.9]).view(1, 3, 1)  # both sides of G/2
    out = space.masked_sums(weights, packed_rows(mask), 2**30, path=path)
    member = space.member.long()  # [K, G]
    expected = torch.einsum("gd,dbg,kg->dbk", weights, mask.long(), member)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("density", [0.05, 0.6])
def test_masked_csr_sums_equals_masked_row_sums(density):
    # The CSR table and the dense table give the same integers, outside rows and padding bits included.
    g = torch.Generator().manual_seed(4)
    gr, k = 131, 17
    table = torch.rand(gr, k, generator=g) < density
    nz = table.nonzero()
    indptr = torch.zeros(gr + 1, dtype=torch.int64)
    indptr[1:] = torch.cumsum(torch.bincount(nz[:, 0], minlength=gr), 0)
    weights = torch.randint(-(2**40), 2**40, (gr, 4), generator=g)
    mask = torch.rand(4, 3, gr, generator=g) < 0.4
    outside = torch.rand(4, 3, generator=g) < 0.5
    words = packed_rows(mask)
    want = ops.masked_row_sums(words, outside, weights, table)
    assert torch.equal(ops.masked_csr_sums(words, outside, weights, indptr, nz[:, 1].contiguous(), k), want)
    rows = torch.where(outside.unsqueeze(-1), ~mask, mask).long()
    assert torch.equal(want, torch.einsum("gd,dbg,gk->dbk", weights, rows, table.long()))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 16\)"):
        ops.masked_csr_sums(words, outside, weights, indptr, nz[:, 1].contiguous(), k - 1)


def test_beam_step_select_keeps_ties_and_counts_valid():
    g = torch.Generator().manual_seed(3)
    d, b, k, n = 4, 3, 5, 100
    cs = inv.ConceptSet(random_labels(n, k, density=0.3, seed=3))
    x = torch.randn(n, d, generator=g).round()
    ranks, _ = inv.rank_doubled_ties(x)
    conc_s = ranks.long().t() @ cs.dense().long()  # [D, K]
    beam_mask = torch.rand(d, b, n, generator=g) < 0.3
    beam_s = torch.einsum("nd,dbn->db", ranks.long(), beam_mask.long())
    beam_p = beam_mask.sum(-1)
    xs = torch.einsum("nd,dbn,nk->dbk", ranks.long(), beam_mask.long(), cs.dense().long())
    xp = torch.einsum("dbn,nk->dbk", beam_mask.long(), cs.dense().long())
    valid = torch.ones(d, b, dtype=torch.bool)
    ext = torch.ones(d, 2 * k, dtype=torch.bool)
    lo, hi = size_bounds(n, 0.0, 0.5)
    indptr, cols, vals, nvalid, s2_kept, p_kept = ops.beam_step_select(
        xs, xp, 0, beam_s, beam_p, valid, conc_s, cs.counts, ext, n, lo, hi, 1.0, 4
    )
    # brute force: every pool member's score
    total = n * (n + 1)
    pc = cs.counts
    s = torch.stack(
        [
            torch.cat([xs, beam_s[..., None] - xs], 2),
            torch.cat([beam_s[..., None] + conc_s[:, None] - xs, total - conc_s[:, None] + xs], 2),
        ],
        2,
    )
    p = torch.stack(
        [torch.cat([xp, beam_p[..., None] - xp], 2), torch.cat([beam_p[..., None] + pc - xp, n - pc + xp], 2)], 2
    )
    auc = inv.auc_from_rank_sums(s, p, n)
    keep = (p >= lo) & (p <= hi) & (p != beam_p[..., None, None])
    pool = torch.cat(
        [
            torch.where(keep, auc, float("-inf")).reshape(d, -1),
            inv.auc_from_rank_sums(beam_s, beam_p, n).where((beam_p >= lo) & (beam_p <= hi), float("-inf")),
        ],
        1,
    )
    s_pool = torch.cat([s.reshape(d, -1), beam_s], 1)
    p_pool = torch.cat([p.reshape(d, -1), beam_p], 1)
    for i in range(d):
        row = pool[i]
        thr = torch.unique(row[row > float("-inf")]).sort(descending=True).values[3]  # the 4th best distinct score
        want = (row >= thr).nonzero().flatten()
        got = slice(int(indptr[i]), int(indptr[i + 1]))
        assert cols[got].tolist() == want.tolist()
        assert torch.equal(vals[got], row[want])
        assert torch.equal(s2_kept[got], s_pool[i, want]) and torch.equal(p_kept[got], p_pool[i, want])
        assert nvalid[i].item() == int((row > float("-inf")).sum())
