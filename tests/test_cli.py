"""invert-fast explain on files: formats, outputs, and one-line errors."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

import invert_fast as inv
from invert_fast.apps.cli import main


@pytest.fixture
def files(tmp_path):
    g = np.random.default_rng(0)
    n, d = 120, 4
    y = g.integers(0, 5, n)
    acts = g.normal(size=(n, d)).astype(np.float32)
    acts[:, 0] += 3 * (y == 2)
    np.save(tmp_path / "a.npy", acts)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "names.txt").write_text("zero\none\ntwo\nthree\nfour\n")
    return tmp_path, acts, y


def test_explain_csv_from_npy_class_indices(files, capsys):
    tmp, acts, y = files
    rc = main(
        [
            "explain",
            "--activations",
            str(tmp / "a.npy"),
            "--labels",
            str(tmp / "y.npy"),
            "--names",
            str(tmp / "names.txt"),
            "-L",
            "2",
            "-B",
            "3",
            "--out",
            str(tmp / "l.csv"),
            "--layer",
            "fc",
        ]
    )
    assert rc == 0
    out = capsys.readouterr()
    assert out.out.startswith("labeled 4 neurons (120 samples, 5 concepts, L=2, B=3) in ")
    assert "4/4 neurons" in out.err  # progress bar
    df = pd.read_csv(tmp / "l.csv")
    assert len(df) == 12 and (df.layer == "fc").all()
    assert df[(df.neuron == 0) & (df["rank"] == 0)].formula.item() == "two"
    ref = inv.explain(acts, inv.ConceptSet.from_classes(y, ["zero", "one", "two", "three", "four"]), L=2, B=3)
    assert df.auc.tolist() == [e.auc for r in ref for e in r]


def test_explain_distinct_and_permutation_options(files, capsys):
    tmp, acts, y = files
    base = ["explain", "--activations", str(tmp / "a.npy"), "--labels", str(tmp / "y.npy"), "-L", "2", "-B", "3"]
    assert main([*base, "--no-distinct", "--permutations", "9", "--seed", "4", "--out", str(tmp / "p.csv")]) == 0
    df = pd.read_csv(tmp / "p.csv")
    assert list(df.columns).index("p_value_search") == list(df.columns).index("p_value_adjusted") + 1
    assert ((df.p_value_search * 10).round(9) % 1 == 0).all() and df.p_value_search.min() >= 0.1
    cs = inv.ConceptSet.from_classes(y, [f"class{i}" for i in range(5)])
    ref = inv.explain(acts, cs, L=2, B=3, distinct=False, permutations=9, seed=4)
    assert df.p_value_search.tolist() == [e.p_value_search for r in ref for e in r]
    np.save(tmp / "g.npy", np.arange(len(y)) // 4)
    assert main([*base, "--permutations", "5", "--groups", str(tmp / "g.npy"), "--out", str(tmp / "g.csv")]) == 0
    assert main([*base, "--permutations", "5", "--groups", str(tmp / "y.npy")[:-5] + "x.npy", "--out", "o.csv"]) == 2
    assert "groups: no such file" in capsys.readouterr().err


def test_explain_json_from_pt_and_h5(files, capsys):
    tmp, acts, y = files
    multi = (y[:, None] == np.arange(5)).astype(np.uint8)
    torch.save({"acts": torch.from_numpy(acts), "other": torch.zeros(1)}, tmp / "a.pt")
    with h5py.File(tmp / "y.h5", "w") as f:
        f["labels"] = multi
    rc = main(
        [
            "explain",
            "--activations",
            str(tmp / "a.pt"),
            "--activations-key",
            "acts",
            "--labels",
            str(tmp / "y.h5"),
            "-L",
            "1",
            "-B",
            "2",
            "--mode",
            "negative",
            "--adjust",
            "bh",
            "--quiet",
            "--out",
            str(tmp / "l.json"),
        ]
    )
    assert rc == 0
    data = json.load(open(tmp / "l.json"))
    assert data["params"]["mode"] == "negative" and len(data["labels"]) == 8
    assert all(r["p_value_adjusted"] is not None for r in data["labels"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--labels", "y.npy", "--out", "l.txt"], "out: expected a .csv or .json path"),
        (["--labels", "missing.npy", "--out", "l.csv"], "labels: no such file"),
        (["--labels", "y.npy", "--out", "l.csv", "-B", "0"], "B: expected an integer >= 1, got 0"),
        (
            ["--labels", "y.npy", "--out", "l.csv", "--max-fraction", "2"],
            r"max_fraction: expected a number in \[0, 1\], got 2.0",
        ),
        (["--labels", "bad.npy", "--out", "l.csv"], "labels: expected only 0 and 1"),
        (["--labels", "y.npy", "--names", "short.txt", "--out", "l.csv"], "names: expected 5 names"),
    ],
)
def test_errors_are_one_line(files, capsys, args, message):
    tmp, acts, y = files
    np.save(tmp / "bad.npy", np.full((120, 2), 3))
    (tmp / "short.txt").write_text("a\nb\n")
    args = [a if not a.endswith((".npy", ".txt", ".csv")) else str(tmp / a) for a in args]
    rc = main(["explain", "--activations", str(tmp / "a.npy"), "--quiet", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("invert-fast: error: ")
    import re

    assert re.search(message, err[0])
