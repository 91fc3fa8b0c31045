"""inv.explain against the plain beam search of reference.py, and its p-values against scipy."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

import invert_fast as inv
from invert_fast.reference import explain_reference

from .helpers import tied

NAMES = ["a", "b", "c d", "e", "f", "g", "h"]


def problem(seed, n=36, d=3, k=5, levels=5, density=0.35, classes=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, levels, (n, d), generator=g).double()
    if classes:  # few regions: one-hot classes plus unions
        y = torch.randint(0, k - 2, (n,), generator=g)
        y = torch.nn.functional.one_hot(y, k - 2).bool()
        y = torch.cat([y, (y[:, :2].any(1, keepdim=True)), (y[:, 1:3].any(1, keepdim=True))], 1)
    else:
        y = torch.rand(n, k, generator=g) < density
    return x, y


def same_beams(res, ref):
    assert len(res) == len(ref)
    for d, (got, exp) in enumerate(zip(res, ref, strict=True)):
        assert [(str(e.formula), e.length, e.auc) for e in got] == exp, f"neuron {d}"


CASES = [
    dict(L=3, B=4),
    dict(L=2, B=1),
    dict(L=3, B=5, mode="negative"),
    dict(L=3, B=3, limit_search=3),
    dict(L=3, B=4, limit_search=1, mode="negative"),
    dict(L=4, B=3, min_fraction=0.1, max_fraction=0.4),
    dict(L=3, B=6, max_fraction=1.0),
    dict(L=1, B=7),
    dict(L=3, B=4, min_fraction=0.3, max_fraction=0.3),
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("case", range(len(CASES)))
def test_equals_reference_beam_search(seed, case):
    params = CASES[case]
    x, y = problem(seed, classes=seed % 2 == 1)
    names = NAMES[: y.shape[1]]
    res = inv.explain(x, inv.ConceptSet(y, names), **params)
    same_beams(res, explain_reference(x.tolist(), y.int().tolist(), names, **params))


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_methods_and_batches_agree(method):
    x, y = problem(11, n=60, d=7, k=6, levels=4)
    names = NAMES[:6]
    ref = explain_reference(x.tolist(), y.int().tolist(), names, 3, 4, limit_search=5)
    with pytest.warns(UserWarning, match="searching one neuron at a time"):
        res = inv.explain(x, inv.ConceptSet(y, names), L=3, B=4, limit_search=5, method=method, max_memory=1)
    same_beams(res, ref)


def test_float_dtypes_and_numpy_input():
    x, y = problem(3, n=50, d=4)
    names = NAMES[:5]
    ref = explain_reference(x.tolist(), y.int().tolist(), names, 3, 3)
    same_beams(inv.explain(x.float().numpy(), inv.ConceptSet(y.numpy(), names), L=3, B=3), ref)
    plain = inv.explain(x, y.numpy(), L=2, B=2)
    assert str(plain[0][0].formula).lstrip("~").startswith("c")


def test_explanation_fields_and_pvalues_match_scipy():
    g = torch.Generator().manual_seed(2)
    x = tied((400, 5), levels=12, dtype=torch.float32, seed=2).nan_to_num(posinf=9.0, neginf=-9.0)
    y = torch.rand(400, 6, generator=g) < 0.25
    y[:, 0] |= x[:, 0] > 1  # a concept neuron 0 responds to
    cs = inv.ConceptSet(y)
    for alternative in ("two-sided", "greater", "less"):
        res = inv.explain(x, cs, L=2, B=3, alternative=alternative)
        for d in range(5):
            for r, e in enumerate(res[d]):
                m = e.formula.mask(cs).numpy()
                col = x[:, d].double().numpy()
                assert e.neuron == d and e.rank == r
                assert e.concept_fraction == m.sum() / 400
                assert e.differentiability == 2 * abs(e.auc - 0.5)
                assert e.auc == inv.auroc(x[:, d : d + 1], torch.from_numpy(m[:, None])).item()
                ref = mannwhitneyu(col[m], col[~m], alternative=alternative, method="asymptotic").pvalue
                assert e.p_value == pytest.approx(ref, rel=1e-9, abs=1e-300)
                assert e.log10_p_value == pytest.approx(math.log10(ref), rel=1e-9)


def test_log10_p_survives_underflow():
    n = 20_000
    x = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    y = (torch.arange(n) >= n // 2).unsqueeze(1)
    e = inv.explain(x, y, L=1, B=1)[0][0]
    assert e.auc == 1.0 and e.p_value == 0.0
    from scipy.special import log_ndtr

    u, mu, sigma = (n // 2) ** 2, (n // 2) ** 2 / 2, math.sqrt((n // 2) ** 2 * (n + 1) / 12)
    expected = (log_ndtr(-(u - mu - 0.5) / sigma) + math.log(2)) / math.log(10)
    assert e.log10_p_value == pytest.approx(expected, rel=1e-12)  # about -3259: finite although p underflows


def test_adjustments_across_neurons():
    x, y = problem(5, n=80, d=6, k=5)
    raw = inv.explain(x, y, L=2, B=2)
    bonf = inv.explain(x, y, L=2, B=2, adjust="bonferroni")
    bh = inv.explain(x, y, L=2, B=2, adjust="bh")
    for rank in range(2):
        p = np.array([raw[d][rank].p_value for d in range(6)])
        assert [bonf[d][rank].p_value_adjusted for d in range(6)] == pytest.approx(np.minimum(p * 6, 1))
        from scipy.stats import false_discovery_control

        assert [bh[d][rank].p_value_adjusted for d in range(6)] == pytest.approx(false_discovery_control(p))
    assert math.isnan(raw[0][0].p_value_adjusted)


def test_no_admissible_formula_gives_empty_list():
    y = torch.zeros(10, 2, dtype=torch.bool)
    y[:, 1] = True  # empty and full concepts only
    res = inv.explain(torch.randn(10, 3), y, L=3, B=2)
    assert [len(r) for r in res] == [0, 0, 0] and res.best() == [None, None, None]


def test_exports(tmp_path):
    pd = pytest.importorskip("pandas")
    x, y = problem(1, n=40, d=2)
    res = inv.explain(x, inv.ConceptSet(y, NAMES[:5], descriptions={"a": "the letter a"}), L=2, B=2, layer="fc")
    df = res.to_dataframe()
    assert all(
        ("a: the letter a" in d) == ("a" in str(f).replace("~", "").split(" "))
        for d, f in zip(df.definitions, df.formula, strict=True)
    )
    assert list(df.columns)[:9] == [
        "layer",
        "neuron",
        "rank",
        "formula",
        "length",
        "auc",
        "differentiability",
        "concept_fraction",
        "p_value",
    ]
    assert len(df) == 4 and (df.layer == "fc").all()
    res.to_csv(tmp_path / "l.csv")
    back = pd.read_csv(tmp_path / "l.csv")
    assert back.auc.tolist() == df.auc.tolist() and back.formula.tolist() == df.formula.tolist()
    res.to_json(tmp_path / "l.json")
    import json

    data = json.load(open(tmp_path / "l.json"))
    assert data["params"]["L"] == 2 and len(data["labels"]) == 4 and data["labels"][0]["p_value_adjusted"] is None


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(L=0), ValueError, "L: expected an integer >= 1, got 0"),
        (dict(B=2.5), TypeError, "B: expected an integer >= 1, got float 2.5"),
        (dict(limit_search=0), ValueError, "limit_search: expected an integer >= 1, got 0"),
        (dict(min_fraction=-0.1), ValueError, r"min_fraction: expected a number in \[0, 1\], got -0.1"),
        (dict(max_fraction=1.5), ValueError, r"max_fraction: expected a number in \[0, 1\], got 1.5"),
        (dict(min_fraction=0.6, max_fraction=0.5), ValueError, "min_fraction: must not exceed max_fraction"),
        (dict(mode="both"), ValueError, "mode: expected one of"),
        (dict(alternative="up"), ValueError, "alternative: expected one of"),
        (dict(adjust="holm"), ValueError, "adjust: expected one of"),
        (dict(method="magic"), ValueError, "method: expected one of"),
        (dict(max_memory=-5), ValueError, "max_memory: expected an integer >= 1"),
    ],
)
def test_bad_parameters(kwargs, err, match):
    x, y = problem(0, n=20, d=2)
    with pytest.raises(err, match=match):
        inv.explain(x, y, **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="concepts: expected 20 samples"):
        inv.explain(torch.randn(20, 2), torch.zeros(19, 2))
    with pytest.raises(ValueError, match="labels: expected only 0 and 1"):
        inv.explain(torch.randn(3, 2), [[0], [3], [1]])
    x = torch.randn(20, 2)
    x[4, 1] = float("nan")
    with pytest.raises(ValueError, match="neuron 1 has 1 NaN"):
        inv.explain(x, torch.rand(20, 3) < 0.5)


def test_empty_and_oversized_inputs_fail_before_allocating():
    with pytest.raises(ValueError, match=r"activations: there are no samples \(N = 0\)"):
        inv.explain(torch.zeros(0, 3), torch.zeros(0, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"y: there are no samples"):
        inv.ConceptSet.from_classes(torch.zeros(0, dtype=torch.long), ["a"])
    # A broadcast view claims 2e8 rows without holding them: refused from the shape alone.
    huge = torch.zeros(1, 2).expand(200_000_000, 2)
    with pytest.raises(
        ValueError, match="activations: at most 130,000,000 samples can be ranked exactly, got N = 200,000,000"
    ):
        inv.explain(huge, torch.zeros(3, 2, dtype=torch.bool))


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64", ">f8", ">i4"])
def test_unsigned_and_big_endian_numpy_activations_rank_like_float64(dtype):
    x, y = problem(3, n=40, d=3)
    want = inv.explain(x, y, L=2, B=3)
    got = inv.explain(x.numpy().astype(dtype), y, L=2, B=3)
    assert [[(str(e.formula), e.auc) for e in n] for n in got] == [[(str(e.formula), e.auc) for e in n] for n in want]


def test_negative_strides_and_huge_uint64_values():
    x, y = problem(4, n=40, d=3)
    flipped = x.numpy()[::-1]  # a view torch cannot wrap without a copy
    want = inv.explain(torch.from_numpy(flipped.copy()), y.flip(0), L=2, B=3)
    got = inv.explain(flipped, y.numpy()[::-1], L=2, B=3)
    assert [[str(e.formula) for e in n] for n in got] == [[str(e.formula) for e in n] for n in want]
    big = np.full((4, 1), 2**60, dtype=np.uint64)
    with pytest.raises(ValueError, match="activations: torch.uint64 values beyond 2\\^53"):
        inv.explain(big, np.eye(4, 2, dtype=bool))


def test_names_that_cannot_be_written_as_utf8():
    x, y = problem(0, n=20, d=1, k=2)
    with pytest.raises(ValueError, match=r"names\[1\]: cannot be written as UTF-8"):
        inv.explain(x, inv.ConceptSet(y, ["a", "b\ud800"]))


@pytest.mark.parametrize("seed", range(6))
def test_heavy_ties_and_prefix_names_order_like_the_reference(seed):
    # Duplicate and nested concepts make many formulas share a mask (exact AUC ties), and names that
    # are prefixes of each other (plain and quoted) stress the text order of the tie-break.
    g = torch.Generator().manual_seed(seed)
    n = 30
    base = torch.rand(n, 3, generator=g) < 0.3
    y = torch.stack(
        [base[:, 0], base[:, 0], base[:, 0] | base[:, 1], base[:, 1], base[:, 2], base[:, 2] & base[:, 0], base[:, 1]],
        1,
    )
    names = ["a", "ab", "a b", "b", "a!", "Zeta", "_x"]
    x = torch.randint(0, 4, (n, 2), generator=g).double() + 3 * base[:, :1].double()
    for params in (dict(L=3, B=8), dict(L=3, B=5, mode="negative", max_fraction=0.9), dict(L=2, B=12, limit_search=6)):
        res = inv.explain(x, inv.ConceptSet(y, names), **params)
        same_beams(res, explain_reference(x.tolist(), y.int().tolist(), names, **params))


def test_csv_cells_never_start_a_spreadsheet_formula_and_read_back_exactly(tmp_path):
    import csv

    from invert_fast.files import spreadsheet_safe, spreadsheet_text

    names = ["=1+2", "@SUM(A1)", "-x", "+y", "'q", "plain"]
    x, y = problem(5, n=60, d=4, k=len(names))
    res = inv.explain(x, inv.ConceptSet(y, names), L=2, B=4, layer="=cmd|' /C calc'!A0")
    path = tmp_path / "labels.csv"
    res.to_csv(path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        for col in ("layer", "formula", "definitions"):
            assert not row[col].startswith(("=", "+", "-", "@", "\t", "\r")), (col, row[col])
        assert float(row["log10_p_value"]) <= 0  # numbers stay numbers (e.g. -3.2), not "'-3.2"
    assert any(r["formula"].startswith("'") for r in rows)  # a formula led by a hostile name was escaped
    (back,) = inv.read_csv(path)
    assert back.layer == "=cmd|' /C calc'!A0"
    assert [[(e.formula, e.auc, e.p_value) for e in n] for n in back] == [
        [(e.formula, e.auc, e.p_value) for e in n] for n in res
    ]
    for text in ["", "'", "''=", "=a", "a=", "\t", "-1.5"]:
        assert spreadsheet_text(spreadsheet_safe(text)) == text


def test_dataframe_csvs_escape_text_cells_only(tmp_path):
    import pandas as pd

    from invert_fast.files import write_frame_csv

    write_frame_csv(tmp_path / "t.csv", pd.DataFrame({"concept": ["@SUM(A1)", "ok"], "iou": [-0.5, 0.25]}))
    assert (tmp_path / "t.csv").read_text().splitlines() == ["concept,iou", "'@SUM(A1),-0.5", "ok,0.25"]


def test_numpy_scalar_parameters_mean_what_they_print():
    x, y = problem(6, n=50, d=2, k=4)
    want = inv.explain(x, y, L=2, B=3, min_fraction=0.1, max_fraction=0.5)
    got = inv.explain(x, y, L=np.int64(2), B=np.int32(3), min_fraction=np.float32(0.1), max_fraction=np.float16(0.5))
    assert got.params["min_fraction"] == 0.1 and got.params["max_fraction"] == 0.5
    assert [[str(e.formula) for e in n] for n in got] == [[str(e.formula) for e in n] for n in want]
