"""explain(holdout=...): the search sees part of the samples, every label is also scored on the rest."""

import math

import pytest
import torch

import invert_fast as inv
from invert_fast.core.results import read_csv
from invert_fast.core.search import holdout_split
from invert_fast.io.runner import explain_to_file
from invert_fast.reference import metrics_reference

from .helpers import objective_case


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _rows(res):
    cols = ("auc", "auc_heldout", "iou_heldout", "f1_heldout", "auprc_heldout", "correlation_heldout", "cosine_heldout")
    return [(str(e.formula), *(getattr(e, c) for c in cols)) for r in res for e in r]


@pytest.mark.parametrize("objective", ["auroc", "f1", "correlation"])
def test_labels_are_the_training_parts_and_scored_on_the_held_out_part_as_the_reference(objective):
    x, y, names = objective_case(3, 400)
    cs = inv.ConceptSet(y, names)
    res = inv.explain(x, cs, L=2, B=3, holdout=0.5, seed=4, objective=objective, alpha=0.05)
    held = holdout_split(400, 0.5, 4)
    tr, ho = (~held).nonzero().flatten(), held.nonzero().flatten()
    assert res.params["holdout"] == 0.5 and res.params["holdout_samples"] == 200 == int(held.sum())
    plain = inv.explain(x[tr], cs.select_samples(tr), L=2, B=3, objective=objective, alpha=0.05)
    assert [[(str(e.formula), e.auc) for e in r] for r in res] == [[(str(e.formula), e.auc) for e in r] for r in plain]
    csh = cs.select_samples(ho)
    for d in range(x.shape[1]):
        for e in res[d]:
            auc = float(inv.score(x[ho][:, d : d + 1], csh, [e.formula])[0, 0])
            assert _same(auc, e.auc_heldout), (d, str(e.formula))
            want = metrics_reference(x[ho][:, d].tolist(), e.formula.mask(csh).tolist(), 0.05)
            for name, v in want.items():
                got = getattr(e, f"{name}_heldout")
                assert math.isnan(got) if v is None else math.isclose(got, float(v), rel_tol=1e-12, abs_tol=1e-15)
    # Sparse input: the same rows; without a holdout the columns stay NaN.
    sparse = inv.explain(x.to_sparse(), cs, L=2, B=3, holdout=0.5, seed=4, objective=objective, alpha=0.05)
    assert all(all(_same(a, b) for a, b in zip(u[1:], v[1:], strict=True)) and u[0] == v[0]
               for u, v in zip(_rows(sparse), _rows(res), strict=True))  # fmt: skip
    assert all(math.isnan(e.auc_heldout) for r in inv.explain(x, cs, L=1, B=2) for e in r)


def test_groups_are_held_out_whole_and_the_split_is_seeded():
    g = torch.arange(500) // 7  # 72 groups
    held = holdout_split(500, 0.3, 0, g)
    assert all(bool(held[g == k].all()) or not bool(held[g == k].any()) for k in range(72))
    assert 150 <= int(held.sum()) < 157  # whole groups until round(0.3 N) samples are held out
    assert torch.equal(held, holdout_split(500, 0.3, 0, g)) and not torch.equal(held, holdout_split(500, 0.3, 1, g))
    assert int(holdout_split(10, 0.3, 0).sum()) == 3
    x, y, names = objective_case(5, 500)
    cs = inv.ConceptSet(y, names)
    res = inv.explain(x, cs, L=2, B=2, holdout=0.3, groups=g, permutations=5)
    assert res.params["holdout_samples"] == int(held.sum())
    csh = cs.select_samples(held.nonzero().flatten())
    for e in (e for r in res for e in r):  # the permutations exchange the training part's groups
        size = int(e.formula.mask(csh).sum())
        assert 0 < e.p_value_search <= 1 and math.isnan(e.auc_heldout) == (size in (0, csh.n_samples))


def test_bad_holdouts_are_refused_in_one_line():
    x, y = torch.randn(40, 2), torch.rand(40, 3) < 0.3
    for bad in (1.0, -0.1, True, "half"):
        with pytest.raises(ValueError, match=r"^holdout: expected a share in \[0, 1\) of the samples to hold out"):
            inv.explain(x, y, holdout=bad)
    with pytest.raises(ValueError, match=r"^holdout: expected at least 2 samples on each side, got 39 to search and 1"):
        inv.explain(x, y, holdout=0.02)


def test_held_out_columns_travel_through_csv_and_checkpoints(tmp_path):
    x, y, names = objective_case(8, 300)
    cs = inv.ConceptSet(y, names)
    res = inv.explain(x, cs, L=2, B=3, holdout=0.4, seed=2)
    res.to_csv(tmp_path / "l.csv")
    (back,) = read_csv(tmp_path / "l.csv")
    assert all(
        all(_same(a, b) for a, b in zip(u[1:], v[1:], strict=True))
        for u, v in zip(_rows(back), _rows(res), strict=True)
    )
    explain_to_file(x, cs, tmp_path / "ck.csv", checkpoint=tmp_path / "ck", chunk=2, L=2, B=3, holdout=0.4, seed=2)
    (chunked,) = read_csv(tmp_path / "ck.csv")
    assert all(
        all(_same(a, b) for a, b in zip(u[1:], v[1:], strict=True))
        for u, v in zip(_rows(chunked), _rows(res), strict=True)
    )
    with pytest.raises(ValueError, match="checkpoint: .* holds a run with other inputs or parameters"):
        explain_to_file(x, cs, tmp_path / "o.csv", checkpoint=tmp_path / "ck", chunk=2, L=2, B=3, holdout=0.5, seed=2)


def test_the_report_shows_the_held_out_auc(tmp_path):
    from invert_fast.apps.report import LayerReport, write_report

    x, y, names = objective_case(8, 300)
    res = inv.explain(x, inv.ConceptSet(y, names), L=2, B=3, holdout=0.4, seed=2, layer="l")
    page = write_report(tmp_path / "r.html", [LayerReport(res, top=2)]).read_text()
    e = res[0][0]
    assert f"held-out AUC {e.auc_heldout:.4f}" in page and "<th>auc (held out)</th>" in page
