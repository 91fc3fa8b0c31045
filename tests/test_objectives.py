"""The objective's one home (core/objectives.py, csrc/objective.h): AUROC's rational, score, mirror and
exact comparison against Python fractions and the plain definition; IoU and F1 of the top samples T
against counts; the search by each objective against the plain reference (reference.explain_reference);
and one-line errors for what an objective does not support."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.core.objectives import (
    AUROC,
    F1,
    OBJECTIVES,
    Auprc,
    Correlation,
    Cosine,
    Iou,
    objective,
    top_samples,
    top_weights,
    value_weights,
)
from invert_fast.core.sparse import SparseColumns, as_sparse
from invert_fast.reference import exact_reference, explain_reference

from .helpers import objective_case


def test_auroc_is_the_rational_of_rank_sums_compared_exactly():
    g = torch.Generator().manual_seed(0)
    n = 50
    for _ in range(200):
        x = torch.randint(0, 6, (n,), generator=g).double()  # many ties
        ma, mb = torch.rand(n, generator=g) < 0.3, torch.rand(n, generator=g) < 0.6
        if not (0 < int(ma.sum()) < n and 0 < int(mb.sum()) < n):
            continue
        r2 = torch.tensor([float(2 * (x < v).sum() + (x == v).sum() + 1) for v in x])  # 2 x mid-rank
        sa, pa, sb, pb = int(r2[ma].sum()), int(ma.sum()), int(r2[mb].sum()), int(mb.sum())

        def plain(m, x=x):  # P(inside > outside) + P(tie) / 2, by pairs
            ins, out = x[m], x[~m]
            return Fraction(int((ins[:, None] > out[None]).sum()) * 2 + int((ins[:, None] == out[None]).sum()),
                            2 * len(ins) * len(out))  # fmt: skip

        fa, fb = plain(ma), plain(mb)
        num, den = AUROC.rational(sa, pa, n)
        assert Fraction(num, den) == fa
        assert AUROC.score(torch.tensor([sa]), torch.tensor([pa]), n).item() == float(fa)
        assert AUROC.compare(sa, pa, sb, pb, n) == (fa > fb) - (fa < fb)
        assert Fraction(*AUROC.rational(AUROC.mirrored(sa, pa, n), pa, n)) == 1 - fa
    assert AUROC.score(torch.tensor([0, 7]), torch.tensor([0, 3]), 3).isnan().all()  # P = 0 and P = N


def test_the_table_and_an_unknown_objective():
    want = {"auroc": AUROC, "iou": Iou, "f1": F1, "auprc": Auprc, "correlation": Correlation, "cosine": Cosine}
    assert OBJECTIVES == want and objective("iou") is Iou
    assert [o.code for o in OBJECTIVES.values()] == [0, 1, 2, 3, 4, 5]  # csrc/objective.h's kCode of each
    with pytest.raises(
        ValueError,
        match=r"^objective: expected one of \['auprc', 'auroc', 'correlation', 'cosine', 'f1', 'iou'\], got 'mse'$",
    ):
        objective("mse")
    with pytest.raises(
        ValueError, match=r"^objective: 'auprc' searches need at most 1,664,510 samples .* N = 1,664,511;"
    ):
        inv.explain(torch.zeros(1_664_511, 1), torch.zeros(1_664_511, 1, dtype=torch.bool), objective="auprc")
    x, y = torch.randn(40, 2), torch.rand(40, 3) < 0.3
    for kw, name in (
        ({"mode": "negative"}, "mode"),
        ({"limit_search": 2}, "limit_search"),
        ({"search": "exact"}, "search"),
        ({"certify": True}, "certify"),
    ):
        for obj in ("iou", "correlation") if name in ("mode", "limit_search") else ("auprc", "cosine"):
            with pytest.raises(ValueError, match=rf"^{name}: not available with objective '{obj}' \(.*\), got .*$"):
                inv.explain(x, y, objective=obj, **kw)
    for bad in (0, 1.5, "top", True, -0.1):
        with pytest.raises(ValueError, match=r'^alpha: expected a share in \(0, 1\] or "support", got '):
            inv.explain(x, y, objective="f1", alpha=bad)


def test_iou_and_f1_are_rationals_of_counts_compared_exactly():
    g = torch.Generator().manual_seed(3)
    n = 60
    for _ in range(200):
        t, ma, mb = (torch.rand(n, generator=g) < q for q in (0.1, 0.2, 0.4))
        tt = int(t.sum())
        sa, pa, sb, pb = int((t & ma).sum()), int(ma.sum()), int((t & mb).sum()), int(mb.sum())
        if not (0 < pa < n and 0 < pb < n and tt > 0):
            continue

        def ap(m, t=t, tt=tt):  # precision x recall + (1 - recall) x |T| / N
            s = int((t & m).sum())
            return Fraction(s, int(m.sum())) * Fraction(s, tt) + (1 - Fraction(s, tt)) * Fraction(tt, n)

        for obj, plain in (
            (Iou, lambda m, t=t: Fraction(int((t & m).sum()), int((t | m).sum()))),
            (F1, lambda m, t=t, tt=tt: Fraction(2 * int((t & m).sum()), tt + int(m.sum()))),
            (Auprc, ap),
        ):
            fa, fb = plain(ma), plain(mb)
            assert Fraction(*obj.rational(sa, pa, n, tt)) == fa
            assert obj.score(torch.tensor([sa]), torch.tensor([pa]), n, tt).item() == float(fa)
            assert obj.compare(sa, pa, sb, pb, n, tt) == (fa > fb) - (fa < fb)


def test_top_samples_keep_ties_at_the_cutoff_and_support_is_the_positives():
    x = torch.tensor([[3.0, 0.0], [1.0, 0.0], [3.0, 2.0], [0.0, -1.0], [2.0, 0.0]])
    assert top_samples(x, 0.2).t().tolist() == [[True, False, True, False, False], [False, False, True, False, False]]
    # ceil(0.4 * 5) = 2: neuron 1's second largest is a zero, and every zero ties with it.
    assert top_samples(x, 0.4)[:, 1].tolist() == [True, True, True, False, True]
    assert top_samples(x, "support")[:, 1].tolist() == [False, False, True, False, False]
    assert top_samples(x, 1.0).all()


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.3, 0.5, 0.95, "support"])
def test_sparse_top_weights_equal_the_dense_ones(alpha):
    # Cutoffs among the stored positives, inside the zeros and among stored negatives, with stored zeros.
    g = torch.Generator().manual_seed(4)
    x = torch.relu(torch.randn(300, 6, generator=g) - 0.7)
    x[:, 1] = -x[:, 1]
    x[:, 2] -= (torch.rand(300, generator=g) < 0.1).double().float()
    x[:, 3] = torch.round(x[:, 3] * 3)
    dense_w, dense_t = top_weights(x, alpha)
    stored = (x != 0) | (torch.arange(300) % 3 == 0).unsqueeze(1)  # every third zero stored explicitly
    rows, cols = stored.nonzero().unbind(1)
    sparse_w, sparse_t = top_weights(SparseColumns.from_coo(rows, cols, x[rows, cols], x.shape), alpha)
    assert torch.equal(dense_t, sparse_t) and torch.equal(dense_t, top_samples(x, alpha).sum(0))
    cs = inv.ConceptSet(torch.rand(300, 4, generator=g) < 0.3)
    from invert_fast.core.auroc import region_rank_sums

    perm = torch.randperm(300, generator=g)
    plain = top_samples(x, alpha).to(torch.int32)  # [N, D] indicator, summed by the ranks' kernel
    for p in (None, perm):
        want = region_rank_sums(plain, cs.regions(), p).long()
        assert torch.equal(region_rank_sums(dense_w, cs.regions(), p).long(), want)
        assert torch.equal(region_rank_sums(sparse_w, cs.regions(), p).long(), want)


def _case(seed, n=240):
    return objective_case(seed, n)


@pytest.mark.parametrize(
    ("objective_name", "alpha"),
    [(o, a) for o in ("iou", "f1", "auprc") for a in (0.02, 0.1, "support")] + [("correlation", 0.1), ("cosine", 0.1)],
)
def test_search_by_objective_equals_the_plain_reference(objective_name, alpha):
    for seed, (L, B, mf, distinct) in enumerate([(1, 3, 0.0, True), (2, 3, 0.0, True), (3, 4, 0.01, True),
                                                 (3, 3, 0.0, False)]):  # fmt: skip
        x, y, names = _case(seed)
        res = inv.explain(x, inv.ConceptSet(y, names), L=L, B=B, min_fraction=mf, distinct=distinct,
                          objective=objective_name, alpha=alpha)  # fmt: skip
        ref = explain_reference(x.tolist(), y.tolist(), names, L, B, min_fraction=mf, distinct=distinct,
                                objective=objective_name, alpha=alpha)  # fmt: skip
        auc = inv.auroc(x, inv.ConceptSet(y, names))
        for d in range(x.shape[1]):
            assert [(str(e.formula), e.length) for e in res[d]] == [(f, ln) for f, ln, _ in ref[d]], (seed, d)
            for e in res[d]:  # the labels' AUCs are their masks' (atoms: the auroc matrix)
                if e.length == 1:
                    c = int(str(e.formula).lstrip("~c"))
                    want = auc[d, c].item() if not str(e.formula).startswith("~") else 1 - auc[d, c].item()
                    assert math.isclose(e.auc, want, rel_tol=0, abs_tol=1e-15)


def test_search_by_objective_is_the_same_for_sparse_input_and_permutations():
    x, y, names = _case(7, n=300)
    cs = inv.ConceptSet(y, names)
    for obj in ("iou", "f1", "correlation", "cosine"):
        a = inv.explain(x, cs, objective=obj, alpha=0.05, permutations=19, seed=2, min_fraction=0.01)
        b = inv.explain(x.to_sparse(), cs, objective=obj, alpha=0.05, permutations=19, seed=2, min_fraction=0.01)
        rows = lambda r: [(str(e.formula), e.auc, e.p_value, e.p_value_search) for ex in r for e in ex]  # noqa: E731
        assert rows(a) == rows(b), obj
        assert a[0][0].p_value_search == 0.05, obj  # the planted rare concept beats all 19 permutations


def test_a_rare_concept_plus_noise_is_labelled_by_itself_under_every_objective_but_auroc():
    # activation = 1[c] + N(0, 0.3^2), c on 1% of 20,000 samples, 29 other concepts of 2-42%: AUROC's top
    # label is a narrower c & ... in every trial; IoU, F1 and AUPRC with T the top 1% name c itself in
    # nearly every one, correlation and cosine in every one (benchmarks/RESULTS.md: 0/20, 18/20 each,
    # 20/20 each over 20 seeds).
    hits = {"auroc": 0, "iou": 0, "f1": 0, "auprc": 0, "correlation": 0, "cosine": 0}
    for s in range(10):
        g = torch.Generator().manual_seed(s)
        dens = torch.rand(30, generator=g) * 0.4 + 0.02
        dens[0] = 0.01
        y = (torch.rand(20000, 30, generator=g) < dens).long()
        x = y[:, :1].double() + 0.3 * torch.randn(20000, 1, generator=g, dtype=torch.float64)
        cs = inv.ConceptSet(y, [f"c{k}" for k in range(30)])
        for o in hits:
            hits[o] += str(inv.explain(x, cs, L=3, B=5, objective=o, alpha=0.01)[0][0].formula) == "c0"
    assert hits["auroc"] == 0 and min(hits["iou"], hits["f1"], hits["auprc"]) >= 8, hits
    assert min(hits["correlation"], hits["cosine"]) >= 9, hits


@pytest.mark.parametrize("objective_name", ["iou", "f1", "auprc", "correlation", "cosine"])
def test_exact_search_up_to_two_atoms_by_each_objective_equals_brute_force(objective_name):
    for seed, (L, B, mf) in enumerate([(1, 3, 0.0), (2, 4, 0.0), (2, 3, 0.02)]):
        x, y, names = _case(10 + seed, n=160)
        cs = inv.ConceptSet(y, names)
        res = inv.explain(x, cs, L=L, B=B, min_fraction=mf, search="exact", objective=objective_name, alpha=0.05)
        ref = exact_reference(x.tolist(), y.tolist(), names, L, B, min_fraction=mf, objective=objective_name,
                              alpha=0.05)  # fmt: skip
        for d in range(x.shape[1]):
            assert [str(e.formula) for e in res[d]] == [f for f, _, _ in ref[d]], (seed, d)
            if res[d] and objective_name in ("correlation", "cosine"):  # scores that are not the metric
                assert all(math.isnan(e.bound) and not e.certified for e in res[d])
            elif res[d]:  # the exact best score, reached by the rank-0 label
                assert res[d][0].certified and math.isclose(res[d][0].bound, ref[d][0][2], rel_tol=0, abs_tol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_value_weights_are_the_activations_scaled_by_a_power_of_two_with_exact_sums(dtype):
    # q = round(a 2^e) with N max|q| <= 2^52 + N / 2 (every sum exact), the largest such e: doubling it would
    # pass 2^52; sparse input gives the same q for its stored entries and 0 for the rest.
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(1000, 5, generator=g) * torch.tensor([1.0, 1e-3, 1e3, 0.0, 3.0])).to(dtype)
    x[::3, 4] = 0
    q, totals = value_weights(x)
    a = x.double()
    assert q.dtype == torch.int64 and torch.equal(totals, q.sum(0))
    for d in range(5):
        peak = float(a[:, d].abs().max())
        if peak == 0:
            assert not q[:, d].any()
            continue
        scale = float(q[:, d].abs().max()) / peak  # 2^e up to the rounding of the largest entry
        e = round(math.log2(scale))
        assert torch.equal(q[:, d], torch.round(a[:, d] * 2.0**e).long())
        assert 2**50 <= 1000 * peak * 2.0**e < 2**52  # within 4x of the largest e
    sq, st = value_weights(as_sparse(x.to_sparse()))
    dense = torch.zeros_like(q)
    dense[sq.x.indices, sq.x.column_of_entries()] = sq.ranks
    assert torch.equal(dense, q) and torch.equal(st, totals)


def test_correlation_and_cosine_scores_order_masks_as_r_and_cosine_do():
    # The kernels' float score is r (cosine) of q times a positive per-neuron constant: the ratio is that
    # constant for every mask, to float64 rounding (a few ulps), and q's r equals a's r to the stated bound.
    g = torch.Generator().manual_seed(4)
    n = 500
    a = torch.randn(n, 1, generator=g, dtype=torch.float64) + 0.3
    q, t = value_weights(a)
    masks = torch.rand(n, 40, generator=g) < torch.linspace(0.02, 0.9, 40)
    s = (q * masks).sum(0)
    p = masks.sum(0)
    mf = masks.double()
    # numpy's corrcoef: torch.corrcoef differs from it by ~3e-9 here
    r = torch.tensor([np.corrcoef(a[:, 0].numpy(), mf[:, j].numpy())[0, 1] for j in range(40)])
    cos = (a * mf).sum(0) / (a.norm() * p.double().sqrt())
    # The constant from the strongest mask; the others' scores divided by it are r (cosine) to 1e-12
    # absolute (the float score's cancellation in N S - P total: csrc/objective.h, core/objectives.py).
    for score, metric in ((Correlation.score(s, p, n, t), r), (Cosine.score(s, p, n, t), cos)):
        j = int(metric.abs().argmax())
        const = score[j] / metric[j]
        assert float(const) > 0
        assert float((score / const - metric).abs().max()) < 1e-12
    assert (
        Correlation.score(s[:1], torch.tensor([0]), n, t).item()
        == 0
        == Cosine.score(s[:1], torch.tensor([0]), n, t).item()
    )
    assert Correlation.compare(int(s[0]), int(p[0]), int(s[0]), int(p[0]), n, int(t)) == 0
    assert Correlation.compare(int(s[0]), int(p[0]), int(s[1]), int(p[1]), n, int(t)) == (1 if r[0] > r[1] else -1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_top_overlap_search_is_the_same_from_the_metrics_region_sums_and_from_listed_top_samples(dtype):
    # With metrics the dense search takes T's region counts from ops.region_moments (computed for the
    # metrics anyway); without, from top_weights' listed samples: the same T, the same labels.
    x, y, names = _case(21, n=400)
    x = x.to(dtype)
    cs = inv.ConceptSet(y, names)
    for obj, alpha in (("iou", 0.05), ("f1", "support"), ("auprc", 0.1)):
        a = inv.explain(x, cs, objective=obj, alpha=alpha)
        b = inv.explain(x, cs, objective=obj, alpha=alpha, metrics=False)
        assert [[(str(e.formula), e.auc) for e in ex] for ex in a] == [
            [(str(e.formula), e.auc) for e in ex] for ex in b
        ]


@pytest.mark.parametrize("objective_name", ["iou", "f1"])
def test_exact_search_and_certify_at_three_atoms_by_iou_and_f1_equal_brute_force(objective_name):
    # The L = 3 branch and bound prunes prefixes by sound bounds from |T & P|, |P| and |T| (AND: inside P;
    # OR: containing P); its labels and certify's bound equal every formula of <= 3 atoms tried.
    for seed, (B, mf, alpha) in enumerate([(3, 0.0, 0.05), (4, 0.02, 0.1), (2, 0.0, "support")]):
        x, y, names = _case(20 + seed, n=160)
        cs = inv.ConceptSet(y, names)
        kw = {"L": 3, "min_fraction": mf, "objective": objective_name, "alpha": alpha}
        res = inv.explain(x, cs, B=B, search="exact", **kw)
        ref = exact_reference(x.tolist(), y.tolist(), names, 3, B, min_fraction=mf, objective=objective_name,
                              alpha=alpha)  # fmt: skip
        cert = inv.explain(x, cs, B=B, certify=True, **kw)
        for d in range(x.shape[1]):
            assert [str(e.formula) for e in res[d]] == [f for f, _, _ in ref[d]], (seed, d)
            if not cert[d]:
                continue
            best, top = ref[d][0][2], cert[d][0]
            assert math.isclose(top.bound, best, rel_tol=0, abs_tol=1e-15), (seed, d)
            assert top.certified == (getattr(top, objective_name) == top.bound), (seed, d)
