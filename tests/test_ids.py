"""ConceptSet.from_ids equals its dense twin ConceptSet(table[ids]): regions (numbering included),
counts, packed masks, subsets and every search result."""

import numpy as np
import pytest
import torch

import invert_fast as inv

FIELDS = ("region_of", "sizes", "sample_indptr", "sample_indices", "concept_indptr", "concept_regions")


def random_case(seed, n, v, k, columns):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, v, (n, columns), generator=g)
    tables = [torch.rand(v, k + j, generator=g) < 0.3 for j in range(columns)]
    tables[0][1] = tables[0][0]  # two ids with one concept vector: one region
    dense = torch.cat([t[ids[:, j]] for j, t in enumerate(tables)], 1)
    if columns == 1:
        return ids[:, 0], tables[0], dense
    return ids, tables, dense


@pytest.mark.parametrize("seed", range(8))
def test_from_ids_equals_dense_twin(seed):
    n = [5, 300, 4000, 2][seed % 4]
    ids, tables, dense = random_case(
        seed, n, v=[3, 40, 500, 2][seed % 4], k=[2, 30, 70, 3][seed % 4], columns=1 + seed % 3
    )
    a, b = inv.ConceptSet(dense), inv.ConceptSet.from_ids(ids, tables)
    ra, rb = a.regions(), b.regions()
    for f in FIELDS:
        assert torch.equal(getattr(ra, f), getattr(rb, f)), f
    assert ra.identity == rb.identity
    assert torch.equal(a.counts, b.counts)
    pos = [min(3, len(a) - 1), 0, len(a) - 1]
    assert torch.equal(a[pos].counts, b[pos].counts) and torch.equal(
        a[pos].regions().region_of, b[pos].regions().region_of
    )
    assert torch.equal(a.bits, b.bits)


def test_from_ids_search_identical():
    ids, table, dense = random_case(11, 3000, 60, 25, 1)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3000, 4, generator=g)
    a, b = inv.ConceptSet(dense), inv.ConceptSet.from_ids(ids, table)
    for kw in (dict(L=3, B=4, permutations=3), dict(L=2, B=3, search="exact")):
        ra, rb = inv.explain(x, a, **kw), inv.explain(x, b, **kw)
        assert str([(str(e.formula), e.auc, e.p_value_search) for r in ra for e in r]) == str(
            [(str(e.formula), e.auc, e.p_value_search) for r in rb for e in r]
        )


def test_from_ids_never_builds_the_mask_matrix_for_a_search():
    ids, table, _ = random_case(4, 2000, 30, 12, 1)
    cs = inv.ConceptSet.from_ids(ids, table, names=[f"t{i}" for i in range(12)])
    inv.explain(torch.randn(2000, 2), cs, L=2, B=2)
    assert cs._bits is None  # counts and regions came from the ids and the table
    assert cs.dense().shape == (2000, 12) and cs._bits is not None


def test_from_ids_errors():
    table = torch.eye(3)
    with pytest.raises(ValueError, match=r"ids\[2\] = 3 is outside the table's ids \[0, 3\) \(1 sample\(s\) in all\)"):
        inv.ConceptSet.from_ids([0, 1, 3], table)
    with pytest.raises(ValueError, match=r"ids\[0, 1\] = -1"):
        inv.ConceptSet.from_ids([[0, -1]], [table, table])
    with pytest.raises(TypeError, match="ids: expected integers, got dtype torch.float32"):
        inv.ConceptSet.from_ids(torch.tensor([0.0, 1.0]), table)
    with pytest.raises(ValueError, match=r"table: expected one \[V, K\] table per id column \(2\), got 1"):
        inv.ConceptSet.from_ids(torch.zeros(4, 2, dtype=torch.long), [table])
    with pytest.raises(ValueError, match=r"table: expected only 0 and 1, got 2.0 at \(id, concept\) \(0, 0\)"):
        inv.ConceptSet.from_ids([0, 1], 2 * table)
    with pytest.raises(ValueError, match="names: expected 3 names"):
        inv.ConceptSet.from_ids([0, 1], table, names=["a"])


def test_from_ids_nested_lists_and_devices():
    cs = inv.ConceptSet.from_ids([2, 0, 0, 1], [[1, 0], [0, 1], [1, 1]], names=["noun", "plural"])
    assert cs.counts.tolist() == [3, 2] and cs.to("cpu") is cs
    assert cs.mask("plural").tolist() == [True, False, False, True]


def test_checkpoints_key_from_ids_sets_by_their_codes_and_tables(tmp_path):
    g = torch.Generator().manual_seed(5)
    ids, table = torch.randint(0, 20, (500,), generator=g), torch.rand(20, 6, generator=g) < 0.4
    x = torch.randn(500, 10, generator=g)
    cs = inv.ConceptSet.from_ids(ids, table)
    kw = dict(checkpoint=tmp_path / "ck", chunk=4, L=2, B=2)
    inv.explain_to_file(x, cs, tmp_path / "a.csv", **kw)
    inv.explain_to_file(x, cs, tmp_path / "b.csv", **kw)  # resumed: every chunk reused
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert cs._bits is None  # hashed by its codes and tables: no [K, N] masks built
    with pytest.raises(ValueError, match="holds a run with other inputs or parameters"):
        inv.explain_to_file(x, inv.ConceptSet.from_ids(ids, ~table), tmp_path / "c.csv", **kw)


def test_select_samples_keeps_the_concepts_of_the_chosen_rows():
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 7, (130, 2), generator=g)
    tables = [torch.rand(7, 3, generator=g) < 0.5, torch.rand(7, 2, generator=g) < 0.5]
    lazy = inv.ConceptSet.from_ids(ids, tables, ["a", "b", "c", "d", "e"])
    dense = inv.ConceptSet(lazy.dense(), lazy.names)
    rows = torch.tensor([5, 0, 129, 64, 64, 63])
    for cs in (lazy, dense):
        for sel in (rows, rows.numpy(), torch.arange(130) % 3 == 0):
            got = cs.select_samples(sel)
            want = lazy.dense()[sel if not isinstance(sel, np.ndarray) else torch.from_numpy(sel)]
            assert got.names == cs.names and torch.equal(got.dense(), want) and torch.equal(got.counts, want.sum(0))
    assert lazy.select_samples(rows)._bits is None  # from_ids stays lazy: no [K, N] masks
    with pytest.raises(ValueError, match=r"rows: expected sample indices in \[0, 130\), got -1 to 5"):
        lazy.select_samples([5, -1])
    with pytest.raises(TypeError, match="rows: expected integers, got dtype torch.float32"):
        lazy.select_samples(torch.tensor([1.0]))
