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


def run_cli(capsys, argv):
    """(exit status, stdout, stderr lines) of one CLI call."""
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err.strip().splitlines()


def one_line_error(capsys, argv, pattern):
    import re

    rc, _, err = run_cli(capsys, argv)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("invert-fast: error: ") and re.search(pattern, err[0]), err[0]


def explain_argv(tmp, *extra):
    return ["explain", "--activations", str(tmp / "a.npy"), "--labels", str(tmp / "y.npy"), "--quiet", *extra]


@pytest.mark.parametrize(
    "text",
    [
        "zero\none\u2028uno\ntwo\nthree\nfour\n",  # U+2028 stays inside a name (str.splitlines splits there)
        "\ufeffzero\r\none\x85uno\r\ntwo\r\nthree\r\nfour\r\n\r\n",  # BOM, CRLF, U+0085 inside a name
    ],
)
def test_names_split_on_line_feeds_only(files, capsys, text):
    tmp, acts, y = files
    (tmp / "n.txt").write_text(text, encoding="utf-8", newline="")
    rc, _, _ = run_cli(capsys, explain_argv(tmp, "--names", str(tmp / "n.txt"), "--out", str(tmp / "l.csv"), "-L", "1"))
    assert rc == 0
    (res,) = inv.read_csv(tmp / "l.csv")
    assert str(res[0][0].formula) == "two"  # neuron 0 fires for class 2: its name did not shift
    (tmp / "ff.txt").write_text("zero\none\ntwo\nthree\f3\nfour\n")  # a form feed is refused, not split on
    one_line_error(
        capsys, explain_argv(tmp, "--names", str(tmp / "ff.txt"), "--out", str(tmp / "l.csv")), r"names\[3\]: expected"
    )


def test_name_counts_must_match_exactly(files, capsys):
    tmp, acts, y = files
    (tmp / "six.txt").write_text("name\nzero\none\ntwo\nthree\nfour\n")  # a header line: one name too many
    one_line_error(
        capsys,
        explain_argv(tmp, "--names", str(tmp / "six.txt"), "--out", str(tmp / "l.csv")),
        r"names: expected 5 names \(labels hold class indices 0..4\), got 6; use --num-classes",
    )
    rc, _, _ = run_cli(
        capsys, explain_argv(tmp, "--names", str(tmp / "six.txt"), "--num-classes", "6", "--out", str(tmp / "l.csv"))
    )
    assert rc == 0  # six classes, the sixth absent from the data
    one_line_error(
        capsys, explain_argv(tmp, "--num-classes", "3", "--out", str(tmp / "l.csv")), "class index 4 is not below"
    )
    np.save(tmp / "m.npy", np.eye(5, dtype=bool)[y])
    argv = explain_argv(tmp, "--names", str(tmp / "six.txt"), "--out", str(tmp / "l.csv"))
    argv[argv.index(str(tmp / "y.npy"))] = str(tmp / "m.npy")
    one_line_error(capsys, argv, r"names: expected 5 names \(labels are \[N, K = 5\]\), got 6")
    (tmp / "bad.txt").write_bytes(b"zero\none\xff\ntwo\nthree\nfour\n")
    one_line_error(
        capsys,
        explain_argv(tmp, "--names", str(tmp / "bad.txt"), "--out", str(tmp / "l.csv")),
        r"names: .*bad.txt is not UTF-8 text",
    )


def test_outputs_that_are_inputs_or_directories_are_refused_before_computing(files, capsys):
    tmp, acts, y = files
    names = tmp / "names.txt"
    before = names.read_bytes()
    one_line_error(
        capsys,
        explain_argv(tmp, "--names", str(names), "--out", str(tmp / "." / "names.txt")),
        "out: .*names.txt is also the input --names",
    )
    assert names.read_bytes() == before
    (tmp / "dir.csv").mkdir()
    one_line_error(
        capsys, explain_argv(tmp, "--out", str(tmp / "dir.csv")), "out: expected a file path, got the directory"
    )
    one_line_error(
        capsys, explain_argv(tmp, "--out", str(tmp / "names.txt" / "l.csv")), "names.txt is a file, not a folder"
    )
    one_line_error(
        capsys,
        explain_argv(tmp, "--out", str(tmp / "l.csv"), "--checkpoint", str(names)),
        "checkpoint: expected a folder",
    )
    argv = explain_argv(tmp, "--out", str(tmp / "l.csv"))
    argv[argv.index(str(tmp / "a.npy"))] = str(tmp)
    one_line_error(capsys, argv, "activations: expected a file, got the directory")
    assert run_cli(capsys, explain_argv(tmp, "--out", str(tmp / "l.csv")))[0] == 0
    one_line_error(capsys, ["report", str(tmp / "l.csv"), "--out", str(tmp / "l.csv")], "is also the input labels_file")
    one_line_error(capsys, ["transpose", str(tmp / "a.npy"), "--out", str(tmp / "a.npy")], "is also the input store")


def test_report_validates_its_inputs(files, capsys):
    tmp, acts, y = files
    assert run_cli(capsys, explain_argv(tmp, "--out", str(tmp / "l.csv"), "-L", "1"))[0] == 0
    rows = (tmp / "l.csv").read_text().splitlines()
    for neuron, pattern in [
        ("-1", r"expected an index in \[0, 4,194,304\), got -1"),
        ("1000000000", r"expected an index in \[0, 4,194,304\), got 1000000000"),
    ]:
        head, first = rows[0], rows[1].split(",")
        first[1] = neuron
        (tmp / "bad.csv").write_text("\n".join([head, ",".join(first), *rows[2:]]) + "\n")
        one_line_error(
            capsys,
            ["report", str(tmp / "bad.csv"), "--out", str(tmp / "r.html")],
            r"bad.csv, line 2: column 'neuron': " + pattern,
        )
    (tmp / "dup.csv").write_text("\n".join([*rows, rows[1]]) + "\n")
    one_line_error(capsys, ["report", str(tmp / "dup.csv"), "--out", str(tmp / "r.html")], "is also on line 2")
    one_line_error(
        capsys, ["report", str(tmp / "a.npy"), "--out", str(tmp / "r.html")], "a.npy is not a UTF-8 labels CSV"
    )
    np.save(tmp / "y_short.npy", y[:100])
    one_line_error(
        capsys,
        ["report", str(tmp / "l.csv"), "--out", str(tmp / "r.html"), "--activations", str(tmp / "a.npy"),
         "--concepts", str(tmp / "y_short.npy")],
        r"concepts: expected 120 samples \(the rows of --activations\), got 100",
    )  # fmt: skip
    one_line_error(
        capsys,
        ["report", str(tmp / "l.csv"), "--out", str(tmp / "r.html"), "--activations", str(tmp / "a.npy"),
         "--concepts", str(tmp / "y.npy"), "--names", str(tmp / "names.txt")],
        r"names: the labels use concepts \[.*\] that are not among the 5 concept names",
    )  # fmt: skip


def test_truncated_npy_and_corrupt_checkpoint_name_their_file(files, capsys):
    tmp, acts, y = files
    (tmp / "t.npy").write_bytes((tmp / "a.npy").read_bytes()[:5])
    argv = explain_argv(tmp, "--out", str(tmp / "l.csv"))
    argv[argv.index(str(tmp / "a.npy"))] = str(tmp / "t.npy")
    one_line_error(capsys, argv, r"t.npy")
    ck = tmp / "ck"
    assert (
        run_cli(capsys, explain_argv(tmp, "--out", str(tmp / "l.csv"), "--checkpoint", str(ck), "--chunk", "2"))[0] == 0
    )
    chunk = sorted(p for p in ck.iterdir() if p.name != "meta.json")[0]
    chunk.write_bytes(b"\x00garbage")
    rc, _, err = run_cli(
        capsys, explain_argv(tmp, "--out", str(tmp / "l2.csv"), "--checkpoint", str(ck), "--chunk", "2")
    )
    assert rc == 0 and (tmp / "l2.csv").read_bytes() == (tmp / "l.csv").read_bytes()
    assert len(err) == 1 and err[0].startswith("invert-fast: warning: checkpoint: ") and chunk.name in err[0], err
    (ck / "meta.json").write_text("{not json")
    one_line_error(
        capsys, explain_argv(tmp, "--out", str(tmp / "l3.csv"), "--checkpoint", str(ck), "--chunk", "2"), "meta.json"
    )


def test_help_gives_every_option_a_description_and_default(capsys):
    from invert_fast.apps.cli import parser

    sub = parser()._subparsers._group_actions[0].choices
    for name, p in sub.items():
        for action in p._actions:
            if action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings}: no help"
            if action.option_strings and not action.required and not isinstance(action.default, bool):
                assert "default" in action.help, f"{name} {action.option_strings}: no default stated"


def test_explain_options_are_the_search_parameters_fields():
    import dataclasses

    from invert_fast.apps.cli import parser
    from invert_fast.core.params import SearchParams

    args = parser().parse_args(["explain", "--activations", "a.npy", "--labels", "c.npy", "--out", "l.csv"])
    assert SearchParams(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SearchParams)}) == SearchParams()
    text = parser()._subparsers._group_actions[0].choices["explain"].format_help()
    for f in dataclasses.fields(SearchParams):
        assert (f.metadata["flag"] or "--" + f.name.replace("_", "-")) in text
    args = parser().parse_args(["explain", "--activations", "a.npy", "--labels", "c.npy", "--out", "l.csv", "-L", "2",
                                "--no-distinct", "--certify", "--mode", "negative"])  # fmt: skip
    assert (args.L, args.distinct, args.certify, args.mode) == (2, False, True, "negative")


def test_explain_by_another_objective(files, capsys):
    tmp, acts, y = files
    base = ["explain", "--activations", str(tmp / "a.npy"), "--labels", str(tmp / "y.npy"), "-L", "2", "-B", "3"]
    assert main([*base, "--objective", "iou", "--alpha", "0.2", "--out", str(tmp / "i.csv")]) == 0
    df = pd.read_csv(tmp / "i.csv")
    cs = inv.ConceptSet.from_classes(y, [f"class{i}" for i in range(5)])
    ref = inv.explain(acts, cs, L=2, B=3, objective="iou", alpha=0.2)
    assert df.formula.tolist() == [str(e.formula) for r in ref for e in r] and df.auc.tolist() == [
        e.auc for r in ref for e in r
    ]
    assert main([*base, "--objective", "f1", "--alpha", "support", "--out", str(tmp / "f.csv")]) == 0
    capsys.readouterr()
    assert main([*base, "--objective", "iou", "--mode", "negative", "--out", str(tmp / "n.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("mode: not available with objective 'iou' ('negative' mirrors AUROC's ranks), got 'negative'")
    assert len(err.splitlines()) == 1
