"""The five label metrics (core/metrics.py) on every label, whatever the objective: equal to the plain
definitions (reference.metrics_reference, scikit-learn's average precision, numpy's correlation), the same
for sparse input and its dense twin, and carried through CSV, JSON and read_csv."""

import math

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.core.objectives import top_samples
from invert_fast.reference import metrics_reference

from .helpers import objective_case

# Correlation and cosine are float64 sums in sample order: each within gamma_(N-1) sum|a| of the exact sum
# (u = 2^-53). For N = 300 and values of order 1 the results' relative error stays below 1e-12 (measured:
# ~1e-15); the rationals (IoU, F1, AUPRC) are compared exactly.
FLOAT_RTOL = 1e-12


def case(seed, n=300):
    x, y, names = objective_case(seed, n, d=6)
    return x, inv.ConceptSet(y, names)


def mask_of(formula, cs):
    cols = {name: cs.dense()[:, i].bool() for i, name in enumerate(cs.names)}
    return formula.evaluate(lambda name, negated: cols[name] ^ negated)


@pytest.mark.parametrize("objective", ["auroc", "iou", "f1"])
@pytest.mark.parametrize("alpha", [0.01, 0.1, "support"])
def test_every_label_carries_the_five_metrics(objective, alpha):
    for seed in range(3):
        x, cs = case(seed)
        for xx in (x, x.to_sparse()):
            res = inv.explain(xx, cs, L=3, B=3, objective=objective, alpha=alpha, min_fraction=0.01)
            for d in range(x.shape[1]):
                for e in res[d]:
                    want = metrics_reference(x[:, d].tolist(), mask_of(e.formula, cs).tolist(), alpha)
                    for name in ("iou", "f1", "auprc"):
                        w = want[name]
                        got = getattr(e, name)
                        assert (math.isnan(got) and w is None) or got == float(w), (name, d, str(e.formula))
                    for name in ("correlation", "cosine"):
                        w, got = want[name], getattr(e, name)
                        assert (math.isnan(got) and w is None) or math.isclose(got, w, rel_tol=FLOAT_RTOL), name


def test_sparse_and_dense_metrics_are_identical_and_match_sklearn_and_numpy():
    from sklearn.metrics import average_precision_score

    x, cs = case(4, n=500)
    a = inv.explain(x, cs, L=2, B=4, alpha=0.05)
    b = inv.explain(x.to_sparse(), cs, L=2, B=4, alpha=0.05)
    cols = ("iou", "f1", "auprc", "correlation", "cosine")
    assert [[tuple(getattr(e, c) for c in cols) for e in r] for r in a] == [
        [tuple(getattr(e, c) for c in cols) for e in r] for r in b
    ]
    t = top_samples(x, 0.05)
    for d in range(x.shape[1]):
        for e in a[d]:
            m = mask_of(e.formula, cs).numpy()
            ap = average_precision_score(t[:, d].numpy(), m.astype(float))
            assert math.isclose(e.auprc, ap, rel_tol=1e-12)
            r = np.corrcoef(x[:, d].double().numpy(), m.astype(float))[0, 1]
            assert math.isclose(e.correlation, r, rel_tol=1e-9)


def test_metric_columns_survive_csv_json_and_read_csv(tmp_path):
    x, cs = case(5)
    res = inv.explain(x, cs, L=2, B=2, alpha=0.05)
    res.to_csv(tmp_path / "l.csv")
    (back,) = inv.read_csv(tmp_path / "l.csv")
    cols = ("iou", "f1", "auprc", "correlation", "cosine")
    for r0, r1 in zip(res, back, strict=True):
        for e0, e1 in zip(r0, r1, strict=True):
            for c in cols:
                v0, v1 = getattr(e0, c), getattr(e1, c)
                assert (math.isnan(v0) and math.isnan(v1)) or v0 == v1
    res.to_json(tmp_path / "l.json")
    import json

    row = json.loads((tmp_path / "l.json").read_text())["labels"][0]
    assert all(c in row for c in cols)


def test_undefined_metrics_are_nan():
    # A constant neuron: correlation undefined; an all-zero one: cosine too; "support" with nothing > 0:
    # T empty, AUPRC undefined (IoU 0, F1 0).
    y = torch.zeros(40, 2, dtype=torch.long)
    y[:10, 0] = 1
    y[5:25, 1] = 1
    x = torch.zeros(40, 2)
    x[:, 1] = 3.0
    res = inv.explain(x, y, L=1, B=1, alpha="support")
    zero, const = res[0][0], res[1][0]
    assert math.isnan(zero.cosine) and math.isnan(zero.correlation) and math.isnan(zero.auprc)
    assert zero.iou == 0 and zero.f1 == 0
    assert math.isnan(const.correlation) and const.cosine > 0


def test_no_metrics_leaves_the_columns_nan_and_the_labels_alone():
    x, cs = case(6)
    a = inv.explain(x, cs, L=2, B=3, alpha=0.05)
    b = inv.explain(x, cs, L=2, B=3, alpha=0.05, metrics=False)
    assert [[(str(e.formula), e.auc, e.p_value) for e in r] for r in a] == [
        [(str(e.formula), e.auc, e.p_value) for e in r] for r in b
    ]
    assert all(math.isnan(e.iou) and math.isnan(e.cosine) for r in b for e in r)
    with pytest.raises(TypeError, match=r"^metrics: expected True or False, got str 'no'$"):
        inv.explain(x, cs, metrics="no")


@pytest.mark.parametrize("alpha", [0.05, "support"])
def test_concept_metrics_are_every_neuron_against_every_concept_as_the_reference(alpha):
    # Each matrix entry equals metrics_reference (exact fractions) of that neuron and concept, AUROC the
    # auroc matrix; sparse input gives the same matrices; a block of neurons at a time changes nothing.
    g = torch.Generator().manual_seed(3)
    y = torch.rand(300, 7, generator=g) < torch.tensor([0.02, 0.1, 0.3, 0.5, 0.05, 0.2, 0.45])
    x = torch.randn(300, 5, generator=g, dtype=torch.float64)
    x[:, 0] += 2 * y[:, 0]
    x[:, 2] = torch.relu(x[:, 2])
    x[:, 3] = 0.0  # constant: correlation and cosine undefined
    m = inv.concept_metrics(x, y, alpha=alpha)
    assert set(m) == {"auroc", "iou", "f1", "auprc", "correlation", "cosine"}
    assert torch.equal(m["auroc"], inv.auroc(x, y))
    for d in range(5):
        for c in range(7):
            want = metrics_reference(x[:, d].tolist(), y[:, c].tolist(), alpha)
            for name, v in want.items():
                got = float(m[name][d, c])
                if v is None:
                    assert math.isnan(got), (name, d, c)
                else:
                    assert math.isclose(got, float(v), rel_tol=1e-12, abs_tol=1e-15), (name, d, c, got, v)
    sparse = inv.concept_metrics(x.to_sparse(), y, alpha=alpha)
    blocks = inv.concept_metrics(x, y, alpha=alpha, max_memory=40_000)
    for name in m:
        assert torch.allclose(sparse[name], m[name], rtol=1e-12, atol=0, equal_nan=True), name
        assert torch.equal(blocks[name].nan_to_num(-9), m[name].nan_to_num(-9)), name
