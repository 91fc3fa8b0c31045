"""search="exact" against brute-force enumeration, and certify's bound."""

import math

import pytest
import torch

import invert_fast as inv
from invert_fast.reference import exact_reference

from .test_trust import NAMES, coinciding_problem


def small_problem(seed, n=40, d=3, k=5, levels=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, levels, (n, d), generator=g).double()
    y = torch.rand(n, k, generator=g) < torch.linspace(0.1, 0.5, k)
    x[:, 0] += 2 * (y[:, 0] & ~y[:, 1]).double()
    return x, y


CASES = [
    dict(L=1, B=4),
    dict(L=2, B=5),
    dict(L=3, B=4),
    dict(L=2, B=3, mode="negative"),
    dict(L=3, B=5, mode="negative", max_fraction=0.7),
    dict(L=3, B=3, min_fraction=0.2, max_fraction=0.4),  # inadmissible parts make admissible formulas
    dict(L=2, B=6, min_fraction=0.45, max_fraction=0.6),
]


def same(res, ref):
    for d, (got, exp) in enumerate(zip(res, ref, strict=True)):
        assert [(str(e.formula), e.length, e.auc) for e in got] == exp, f"neuron {d}"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("case", range(len(CASES)))
def test_exact_equals_brute_force(seed, case):
    x, y = small_problem(seed)
    names = ["a", "b", "c d", "e", "f"]
    params = CASES[case]
    res = inv.explain(x, inv.ConceptSet(y, names), search="exact", **params)
    same(res, exact_reference(x.tolist(), y.int().tolist(), names, **params))
    for r in res:  # search="exact": the bound is the optimum and every list is certified
        if r:
            assert r[0].bound == r[0].auc and all(e.certified and e.bound == r[0].bound for e in r)


@pytest.mark.parametrize("seed", range(3))
def test_exact_with_coinciding_masks_and_heavy_ties(seed):
    x, y = coinciding_problem(seed, n=36)
    for params in (dict(L=3, B=6), dict(L=2, B=8, mode="negative", max_fraction=0.8)):
        res = inv.explain(x, inv.ConceptSet(y, NAMES), search="exact", **params)
        same(res, exact_reference(x.tolist(), y.int().tolist(), NAMES, **params))


@pytest.mark.parametrize("seed", range(6))
def test_certify_bound_is_the_optimum_and_admissible(seed):
    x, y = small_problem(seed, n=50, d=4, k=6)
    names = [f"k{i}" for i in range(6)]
    for params in (dict(L=2, B=2), dict(L=3, B=2), dict(L=3, B=1, mode="negative"), dict(L=3, B=3, min_fraction=0.1)):
        beam = inv.explain(x, inv.ConceptSet(y, names), certify=True, **params)
        ref = exact_reference(
            x.tolist(),
            y.int().tolist(),
            names,
            params["L"],
            1,
            **{k: v for k, v in params.items() if k not in ("L", "B")},
        )
        sign = 1 if params.get("mode", "positive") == "positive" else -1
        for d, r in enumerate(beam):
            assert r[0].bound == ref[d][0][2]  # the exact optimum of <= L atoms
            assert sign * (r[0].bound - r[0].auc) >= 0  # admissible: never below the beam's best
            assert r[0].certified == (r[0].auc == r[0].bound)
            assert all(e.bound == r[0].bound and e.certified == r[0].certified for e in r)
    plain = inv.explain(x, y, L=2, B=2)
    assert all(math.isnan(e.bound) and not e.certified for r in plain for e in r)


def test_beam_misses_what_exact_finds():
    # Two inadmissible atoms (~a, ~b: 80% of the samples each) make an admissible ~a & ~b, which a beam
    # started from admissible atoms cannot build.
    g = torch.Generator().manual_seed(0)
    n = 400
    y = torch.zeros(n, 3, dtype=torch.bool)
    y[:200, 0] = True  # a: half
    y[150:350, 1] = True  # b: half, overlapping
    y[:, 2] = torch.rand(n, generator=g) < 0.3
    x = ((~y[:, 0] & ~y[:, 1]).double() * 2 + torch.rand(n, generator=g)).unsqueeze(1)  # fires outside a and b
    cs = inv.ConceptSet(y, ["a", "b", "c"])
    beam = inv.explain(x, cs, L=2, B=1, max_fraction=0.45, certify=True)[0][0]
    exact = inv.explain(x, cs, L=2, B=1, max_fraction=0.45, search="exact")[0][0]
    assert str(exact.formula) == "~a & ~b" and exact.auc > beam.auc
    assert beam.bound == exact.auc and not beam.certified


def test_exact_errors_and_limits():
    x, y = small_problem(0)
    with pytest.raises(ValueError, match="search: 'exact' is defined for L <= 3"):
        inv.explain(x, y, L=4, search="exact")
    with pytest.raises(ValueError, match="limit_search must be None"):
        inv.explain(x, y, L=2, search="exact", limit_search=3)
    with pytest.raises(ValueError, match="distinct must be True"):
        inv.explain(x, y, L=2, search="exact", distinct=False)
    with pytest.raises(ValueError, match="search: expected one of"):
        inv.explain(x, y, search="greedy")
    with pytest.raises(ValueError, match="certify: bounds are computed for L <= 3"):
        inv.explain(x, y, L=4, certify=True)
    with pytest.raises(
        ValueError, match=r"max_work: the exact search needs 630 candidate evaluations .* above max_work = 100"
    ):
        inv.explain(x, y, L=2, search="exact", max_work=100)
    with pytest.raises(ValueError, match="max_memory: the exact search needs about"):
        inv.explain(x, y, L=3, search="exact", max_memory=1000)


def test_exact_columns_round_trip(tmp_path):
    x, y = small_problem(1)
    res = inv.explain(x, y, L=2, B=2, certify=True)
    res.to_csv(tmp_path / "l.csv")
    head = (tmp_path / "l.csv").read_text().splitlines()[0].split(",")
    assert head[head.index("p_value_search") + 1 : head.index("p_value_search") + 3] == ["bound", "certified"]
    back = inv.read_csv(tmp_path / "l.csv")[0]
    assert [[(e.bound, e.certified) for e in r] for r in back] == [[(e.bound, e.certified) for e in r] for r in res]
    assert "True" in (tmp_path / "l.csv").read_text() or "False" in (tmp_path / "l.csv").read_text()


def test_cli_search_exact_and_certify(tmp_path, capsys):
    from invert_fast.apps.cli import main
    from invert_fast.apps.report import LayerReport, write_report

    x, y = small_problem(2, n=80, d=4, k=5)
    import numpy as np

    np.save(tmp_path / "a.npy", x.float().numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    base = [
        "explain",
        "--activations",
        str(tmp_path / "a.npy"),
        "--labels",
        str(tmp_path / "y.npy"),
        "-L",
        "3",
        "-B",
        "3",
    ]
    assert main([*base, "--search", "exact", "--out", str(tmp_path / "e.csv")]) == 0
    assert main([*base, "--certify", "--out", str(tmp_path / "c.csv")]) == 0
    exact, cert = inv.read_csv(tmp_path / "e.csv")[0], inv.read_csv(tmp_path / "c.csv")[0]
    assert all(r[0].certified for r in exact)
    assert [r[0].bound for r in cert] == [r[0].auc for r in exact]
    assert main([*base, "--search", "exact", "--max-work", "10", "--out", str(tmp_path / "m.csv")]) == 2
    assert "max_work: the exact search needs" in capsys.readouterr().err
    res = inv.explain(x.float(), y, L=3, B=3, certify=True)
    page = write_report(tmp_path / "r.html", [LayerReport(res, top=4)]).read_text()
    assert "best labels reach the exact best AUC of any admissible formula of at most 3 atoms" in page
