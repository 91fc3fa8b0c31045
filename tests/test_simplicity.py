"""Simplicity against precision (core/simplicity.py): per length, the best AUC equals the search's with
that length and never falls; held-out AUCs equal each fitted label scored on the other half by plain
AUROC; a planted two-atom unit gains from its second atom held out, a one-atom unit does not."""

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.core.simplicity import simplicity_precision


def planted(n=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(n, 6, generator=g) < 0.3
    noise = torch.randn(n, 8, generator=g) * 0.6
    one = c[:, 0].float().unsqueeze(1) + noise[:, :4]  # units 0-3: concept 0 alone
    two = (c[:, 1] & c[:, 2]).float().unsqueeze(1) * 1.5 + noise[:, 4:]  # units 4-7: concepts 1 AND 2
    return torch.cat([one, two], 1), inv.ConceptSet(c, [f"c{i}" for i in range(6)])


def test_best_auc_is_the_search_at_each_length_and_never_falls():
    x, cs = planted()
    sp = simplicity_precision(x, cs, L=3, B=3, min_fraction=0.02, layer="toy")
    for i, length in enumerate(sp.lengths):
        want = [r[0].auc for r in inv.explain(x, cs, L=length, B=3, min_fraction=0.02)]
        assert np.array_equal(sp.best_auc[i], np.array(want))
    assert (np.diff(sp.best_auc, axis=0) >= 0).all()


def test_held_out_is_the_fitted_label_scored_on_the_other_half():
    x, cs = planted(1200, seed=1)
    groups = torch.arange(1200) // 10  # 120 groups of 10: halves never split a group
    sp = simplicity_precision(x, cs, L=2, B=2, min_fraction=0.02, groups=groups)
    fit = (groups % 2 == 0).numpy()
    tr, te = np.flatnonzero(fit), np.flatnonzero(~fit)
    assert sp.n_fit == len(tr) == 600 and "120 groups" in sp.split
    dense = cs.dense()
    for i, length in enumerate((1, 2)):
        labels = inv.explain(x[tr], inv.ConceptSet(dense[tr], cs.names), L=length, B=2, min_fraction=0.02)
        for d, r in enumerate(labels):
            col = {name: dense[te, k] for k, name in enumerate(cs.names)}  # the label's mask on the held-out half
            mask = r[0].formula.evaluate(lambda name, neg, col=col: ~col[name] if neg else col[name].clone())
            want = inv.auroc(x[te, d : d + 1], inv.ConceptSet(mask.unsqueeze(1), ["m"]))[0, 0].item()
            assert sp.held_out[i, d] == want


def test_a_second_atom_helps_a_two_atom_unit_held_out_and_not_a_one_atom_unit():
    x, cs = planted(4000, seed=2)
    sp = simplicity_precision(x, cs, L=2, B=3, min_fraction=0.02)
    gain = sp.held_out[1] - sp.held_out[0]
    assert (gain[4:] > 0.05).all()  # c1 & c2: one atom leaves half the mask out
    assert (gain[:4] < 0.01).all()  # c0 alone: a second atom fits noise at best
    rows = sp.rows()
    assert rows[1]["share improved held out"] >= 0.5 and np.isnan(rows[0]["share improved held out"])
    assert rows[1]["share improved significantly"] == 0.5  # the four two-atom units, none of the one-atom ones
    assert "| 2 |" in sp.text()


def test_hanley_mcneil_standard_error_matches_its_formula_and_a_simulation():
    from invert_fast.core.simplicity import auc_standard_error

    # By hand: A = 0.8, n1 = 100, n2 = 900: Q1 = 2/3, Q2 = 1.28 / 1.8.
    q1, q2 = 0.8 / 1.2, 1.28 / 1.8
    want = ((0.16 + 99 * (q1 - 0.64) + 899 * (q2 - 0.64)) / (100 * 900)) ** 0.5
    assert auc_standard_error(np.array([0.8]), np.array([100]), 1000)[0] == pytest.approx(want, rel=1e-12)
    # Monte Carlo: the spread of AUCs of 400 fresh samples (binormal, shift 1.2: AUC ~0.80) is what the
    # formula says, within 15% (the formula assumes exponential score distributions; binormal is close).
    g = torch.Generator().manual_seed(0)
    n1, n2, aucs = 80, 320, []
    labels = torch.cat([torch.ones(n1), torch.zeros(n2)]).bool().unsqueeze(1)
    for _ in range(400):
        x = torch.cat([torch.randn(n1, generator=g) + 1.2, torch.randn(n2, generator=g)]).unsqueeze(1)
        aucs.append(inv.auroc(x, inv.ConceptSet(labels, ["pos"]))[0, 0].item())
    sd = float(np.std(aucs, ddof=1))
    se = float(auc_standard_error(np.array([np.mean(aucs)]), np.array([n1]), n1 + n2)[0])
    assert abs(se / sd - 1) < 0.15, (se, sd)


def test_the_report_draws_the_curves_and_tables(tmp_path):
    from invert_fast.apps.report import write_report

    x, cs = planted(800, seed=3)
    sp = simplicity_precision(x, cs, L=2, B=2, min_fraction=0.02, layer="toy <layer>")
    page = write_report(tmp_path / "r.html", [], "t", simplicity=[sp]).read_text(encoding="utf-8")
    assert 'id="simplicity"' in page and page.count("<polyline") == 2 and "toy &lt;layer&gt;" in page
    assert "<th>significantly</th>" in page
