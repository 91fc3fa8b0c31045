"""Exports to Neuronpedia's explanation import and delphi's explanations folder, read back."""

import gzip
import json

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.apps.cli import main
from invert_fast.io.exports import export_delphi, export_neuronpedia


@pytest.fixture(scope="module")
def res():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 7, generator=g)
    y = torch.rand(300, 5, generator=g) < 0.3
    x[:, 2] += 3 * y[:, 1]
    return inv.explain(x, inv.ConceptSet(y, ["cat", "cat2", "dog", "sea side", "tree"]), L=2, B=3, layer="6-mlp")


def read_rows(files):
    return [json.loads(line) for f in files for line in gzip.decompress(f.read_bytes()).decode().splitlines()]


def test_neuronpedia_rows_read_back(res, tmp_path):
    files = export_neuronpedia(res, tmp_path / "np", model_id="smollm2-135m", batch=4)
    assert [f.name for f in files] == ["batch-0.jsonl.gz", "batch-1.jsonl.gz"]
    rows = read_rows(files)
    assert len(rows) == 7 and [r["index"] for r in rows] == [str(d) for d in range(7)]
    for d, r in enumerate(rows):
        e = res[d][0]
        assert r["modelId"] == "smollm2-135m" and r["layer"] == "6-mlp" and r["explanationModelName"] == "invert_fast"
        assert r["description"] == str(e.formula) == r["formula"] and r["auc"] == e.auc and r["rank"] == 0
        assert r["pValueSearch"] is None  # not computed: null, never NaN
    assert read_rows(export_neuronpedia(res, tmp_path / "np3", "m", source="s", ranks=3))[2]["rank"] == 2
    again = export_neuronpedia(res, tmp_path / "np2", model_id="smollm2-135m", batch=2)  # 4 files
    again = export_neuronpedia(res, tmp_path / "np2", model_id="smollm2-135m", batch=4)  # 2: the rest removed
    assert sorted(f.name for f in (tmp_path / "np2" / "explanations").iterdir()) == [f.name for f in again]
    assert [f.read_bytes() for f in again] == [f.read_bytes() for f in files]  # byte-identical reruns
    with pytest.raises(ValueError, match="model_id: expected Neuronpedia's model id"):
        export_neuronpedia(res, tmp_path / "x", model_id="")


def test_delphi_explanations_read_back(res, tmp_path):
    files = export_delphi(res, tmp_path / "ex", hook="layers.6")
    assert sorted(f.name for f in files) == sorted(f"layers.6_latent{d}.txt" for d in range(7))
    for d in range(7):
        text = (tmp_path / "ex" / f"layers.6_latent{d}.txt").read_bytes()
        assert json.loads(text) == str(res[d][0].formula)  # delphi reads it with orjson.loads
    with pytest.raises(ValueError, match="hook: expected delphi's hook point name"):
        export_delphi(res, tmp_path / "ex", hook="a/b")


def test_cli_exports_both_formats(tmp_path, capsys):
    g = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", g.random((200, 4)).astype(np.float32))
    np.save(tmp_path / "y.npy", (g.random((200, 3)) < 0.4).astype(np.int8))
    base = ["explain", "--activations", str(tmp_path / "a.npy"), "--labels", str(tmp_path / "y.npy"), "-L", "2",
            "-B", "2", "--quiet", "--out", str(tmp_path / "l.csv"), "--layer", "3-mlp"]  # fmt: skip
    assert main([*base, "--export", "neuronpedia", str(tmp_path / "np"), "--model-id", "m1",
                 "--export", "delphi", str(tmp_path / "dl")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "exported 1 neuronpedia file(s)" in out and "exported 4 delphi file(s)" in out
    (labels,) = inv.read_csv(tmp_path / "l.csv")
    rows = read_rows(sorted((tmp_path / "np" / "explanations").glob("*.gz")))
    assert [(r["index"], r["description"], r["auc"]) for r in rows] == [
        (str(d), str(labels[d][0].formula), labels[d][0].auc) for d in range(4)
    ]
    assert json.loads((tmp_path / "dl" / "3-mlp_latent2.txt").read_text()) == str(labels[2][0].formula)
    rc = main([*base, "--export", "neuronpedia", str(tmp_path / "np")])
    assert rc == 2 and "--export neuronpedia needs Neuronpedia's model id" in capsys.readouterr().err
    rc = main([*base, "--export", "html", str(tmp_path / "np")])
    assert rc == 2 and "export: expected a format of ('neuronpedia', 'delphi'), got 'html'" in capsys.readouterr().err
