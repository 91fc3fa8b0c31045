"""Round 3 of the fault campaign (issue 26), one test per class and its neighbours: no silent wrong
result, traceback or hang on the stores, compat, dissection, Broden and the CLI; every error is one line
naming the argument, the file or the layer-wide neuron, what was expected and what came."""

import json
import os
import re
import shutil

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import invert_fast as inv
from invert_fast.apps.cli import main
from invert_fast.compat import Invert, Phi


def one_line(capsys, argv, pattern):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert re.search(pattern, err[0]), err[0]


# --- stores: a store re-checks its file on every read ------------------------------------------------
def test_every_store_format_refuses_a_file_changed_after_opening(tmp_path):
    x = np.random.default_rng(0).random((40, 6)).astype(np.float32)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("Y", data=x, maxshape=(None, None))
    np.save(tmp_path / "a.npy", x)
    save_file({"Y": torch.from_numpy(x)}, str(tmp_path / "a.safetensors"))
    torch.save(torch.from_numpy(x), tmp_path / "a.pt")
    stores = {name: inv.NeuronStore(tmp_path / name) for name in ("a.h5", "a.npy", "a.safetensors", "a.pt")}
    with h5py.File(tmp_path / "a.h5", "a") as f:
        f["Y"].resize((40, 3))  # fewer neurons than the store was opened with
    np.save(tmp_path / "a.npy", x[:, :3])
    save_file({"Y": torch.from_numpy(x[:, :3].copy())}, str(tmp_path / "a.safetensors"))
    torch.save(torch.from_numpy(x[:, :3].copy()), tmp_path / "a.pt")
    for name, store in stores.items():
        with pytest.raises(ValueError, match=f"{name} changed .* after the store was opened as \\[40, 6\\]"):
            store.read(0, 6)


def test_h5_dataset_reshaped_in_place_is_refused(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("Y", data=np.zeros((40, 6), np.float32), maxshape=(None, None))
    store = inv.NeuronStore(tmp_path / "a.h5")
    st = os.stat(tmp_path / "a.h5")
    with h5py.File(tmp_path / "a.h5", "a") as f:
        f["Y"].resize((40, 3))
    os.utime(tmp_path / "a.h5", ns=(st.st_atime_ns, st.st_mtime_ns))  # same modification time: shape still checked
    if os.stat(tmp_path / "a.h5").st_size == st.st_size:
        with pytest.raises(ValueError, match=r"dataset 'Y' was \[40, 6\] when opened, now shape \(40, 3\)"):
            store.read(0, 6)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: torch.save({"a": 1}, p / "x.pt"), r"x.pt holds a dict without tensors \(keys \['a'\]\)"),
        (lambda p: torch.save([1, 2], p / "x.pt"), "x.pt holds a list; expected a tensor or a dict of tensors"),
        (lambda p: (p / "x.safetensors").write_bytes(os.urandom(200)), "cannot read .*x.safetensors as safetensors"),
        (lambda p: _truncated_safetensors(p), "cannot read .*x.safetensors as safetensors"),
        (lambda p: _h5(p, (5, 4, 3)), r"x.h5 dataset 'Y' has shape \(5, 4, 3\); expected 2-D"),
        (
            lambda p: save_file({"Y": torch.zeros(5, 4, 3)}, str(p / "x.safetensors")),
            r"tensor 'Y' has shape \(5, 4, 3\)",
        ),
        (lambda p: torch.save({"Y": torch.zeros(5, 4, 3)}, p / "x.pt"), r"shape \(5, 4, 3\); expected 2-D"),
    ],
)
def test_unreadable_or_wrong_rank_files_fail_at_open_in_one_line(tmp_path, capsys, make, message):
    make(tmp_path)
    path = next(p for p in tmp_path.iterdir() if p.name.startswith("x."))
    with pytest.raises((ValueError, TypeError), match=message):
        inv.NeuronStore(path)
    np.save(tmp_path / "y.npy", np.eye(5, 2, dtype=np.int8))
    one_line(capsys, ["explain", "--activations", str(path), "--labels", str(tmp_path / "y.npy"), "--out",
                      str(tmp_path / "o.csv"), "--quiet"], message)  # fmt: skip


def _truncated_safetensors(p):
    save_file({"Y": torch.rand(20, 5)}, str(p / "full.safetensors"))
    b = (p / "full.safetensors").read_bytes()
    (p / "x.safetensors").write_bytes(b[: len(b) // 2])
    (p / "full.safetensors").unlink()


def _h5(p, shape):
    with h5py.File(p / "x.h5", "w") as f:
        f.create_dataset("Y", data=np.zeros(shape, np.float32))


def test_activations_key_naming_a_3d_dataset_is_refused(tmp_path, capsys):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("Y", data=np.zeros((6, 2), np.float32))
        f.create_dataset("maps", data=np.zeros((6, 2, 3), np.float32))
    np.save(tmp_path / "y.npy", np.eye(6, 2, dtype=np.int8))
    one_line(capsys, ["explain", "--activations", str(tmp_path / "x.h5"), "--activations-key", "maps", "--labels",
                      str(tmp_path / "y.npy"), "--out", str(tmp_path / "o.csv")], r"dataset 'maps' has shape \(6, 2, 3\)")  # fmt: skip


# --- NaN: the layer-wide neuron --------------------------------------------------------------------
def test_nan_errors_name_the_layer_wide_neuron(tmp_path):
    x = torch.rand(30, 700)
    x[4, 650] = float("nan")
    y = torch.rand(30, 3) < 0.5
    for call in (
        lambda: inv.explain(x, y, L=1, B=1, max_memory=200_000),
        lambda: inv.explain(x, y, L=1, B=1, max_memory=200_000, permutations=2),
        lambda: inv.auroc(x, y, max_memory=100_000),
        lambda: inv.explain_to_file(x, y, tmp_path / "o.csv", chunk=64, L=1, B=1),
        lambda: inv.explain(x.to_sparse(), y, L=1, B=1, max_memory=200_000),
    ):
        with pytest.raises(ValueError, match="neuron 650 has"):
            call()
    np.save(tmp_path / "a.npy", x.numpy())
    with pytest.raises(ValueError, match="neuron 650 has"):
        inv.explain(inv.NeuronStore(tmp_path / "a.npy"), y, L=1, B=1, max_memory=200_000)


def test_compositional_nan_names_the_layer_wide_unit():
    maps = torch.rand(6, 40, 3, 3)
    maps[2, 33, 1, 1] = float("nan")
    masks = inv.PixelMasks(torch.rand(6, 2, 6, 6) < 0.4, ["p", "q"])
    with pytest.raises(ValueError, match="NaN at image 2, unit 33"):
        inv.compositional_explain(maps, masks, length=1, thresholds=torch.full((40,), 0.5), max_memory=20_000)


# --- concepts: counts and internal limits ------------------------------------------------------------
def test_no_concepts_is_refused_in_one_line():
    with pytest.raises(ValueError, match="concepts: expected at least one concept to label neurons with, got K = 0"):
        inv.explain(torch.rand(20, 2), torch.zeros(20, 0))


def test_more_than_262144_concepts_are_grouped_exactly():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(64, 262_200, generator=g) < 0.01
    y[:, -1] = y[:, 0]
    cs = inv.ConceptSet(y)
    assert cs.regions().num_regions == torch.unique(y, dim=0).shape[0]


def test_class_index_far_beyond_the_data_fails_before_making_names(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((10, 2)).astype(np.float32))
    y = np.zeros(10, dtype=np.int64)
    y[3] = 10**9
    np.save(tmp_path / "y.npy", y)
    one_line(capsys, ["explain", "--activations", str(tmp_path / "a.npy"), "--labels", str(tmp_path / "y.npy"),
                      "--out", str(tmp_path / "o.csv")], r"class index 1,000,000,000 with 10 samples would make")  # fmt: skip


# --- compat ------------------------------------------------------------------------------------------
def test_explain_formula_renames_whole_concepts(tmp_path):
    torch.save(torch.eye(4)[:, :2].float(), tmp_path / "l.tnsr")
    desc = {"0": {"offset": "cat", "name": "<CAT>"}, "1": {"offset": "cat2", "name": "<LION>"}}
    (tmp_path / "d.json").write_text(json.dumps(desc))
    ex = Invert()
    ex.load_concept_labels(tmp_path / "l.tnsr", tmp_path / "d.json")
    assert ex.explain_formula(Phi("cat2 | ~cat"))["label"] == "<LION> | ~<CAT>"
    assert ex.explain_formula(Phi("cat & cat2"))["label"] == "<CAT> & <LION>"
    with pytest.raises(ValueError, match="feature_batch_size: expected an integer >= 1, got -1"):
        ex.explain_from_h5(tmp_path / "none.h5", L=1, B=1, feature_batch_size=-1)


# --- dissection ------------------------------------------------------------------------------------
def test_nan_thresholds_are_refused_and_rounding_is_said():
    maps = torch.rand(8, 3, 4, 4)
    masks = inv.PixelMasks(torch.rand(8, 2, 8, 8) < 0.3, ["p", "q"])
    with pytest.raises(ValueError, match=r"thresholds: unit 1 has a NaN threshold \(1 unit\(s\) in all\)"):
        inv.network_dissection(maps, masks, thresholds=torch.tensor([0.5, float("nan"), 0.5]))
    with pytest.raises(ValueError, match="thresholds: unit 0 has a NaN"):
        inv.compositional_explain(maps, masks, length=2, thresholds=torch.tensor([float("nan"), 0.5, 0.5]))
    with pytest.warns(UserWarning, match="2 of 3 float64 thresholds are not float32 values"):
        inv.network_dissection(maps, masks, thresholds=torch.tensor([0.5, 0.1, 0.3], dtype=torch.float64))


# --- Broden --------------------------------------------------------------------------------------------
def _tiny_broden(tmp_path):
    pytest.importorskip("PIL")
    masks = torch.zeros(3, 2, 4, 4, dtype=torch.bool)
    masks[:, 0, :2] = True
    masks[1, 1, 2:] = True
    pm = inv.PixelMasks(masks, ["sky", "grass"], categories=["object", "object"])
    root = tmp_path / "broden"
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    inv.write_broden(root, pm, images)
    return root


def test_broden_csvs_with_a_bom_are_read(tmp_path):
    root = _tiny_broden(tmp_path)
    want = inv.read_broden(root)
    for f in root.glob("*.csv"):
        f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    got = inv.read_broden(root)
    assert got.masks.names == want.masks.names and torch.equal(got.masks.words, want.masks.words)


def test_broden_label_numbers_beyond_png_are_refused(tmp_path):
    root = _tiny_broden(tmp_path)
    text = (root / "label.csv").read_text().splitlines()
    head, rows = text[0], text[1:]
    rows[-1] = re.sub(r"^\d+", str(10**11), rows[-1])
    (root / "label.csv").write_text("\n".join([head, *rows]) + "\n")
    with pytest.raises(ValueError, match=r"label number 100000000000 exceeds 65,535, the largest a Broden label PNG"):
        inv.read_broden(root)


# --- CLI -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, pattern",
    [
        (
            ["demo", "--samples", "-9990"],
            r"^invert-fast demo: error: argument --samples: expected an integer >= 1, got -9990",
        ),
        (["demo", "--permutations", "-1"], "argument --permutations: expected an integer >= 0, got -1"),
        (
            ["explain", "--activations", "a", "--labels", "b", "--out", "o.csv", "--chunk", "0"],
            "argument --chunk: expected an integer >= 1, got 0",
        ),
        (
            ["explain", "--activations", "a", "--labels", "b", "--out", "o.csv", "--max-memory", "x"],
            "argument --max-memory: expected an integer >= 1, got 'x'",
        ),
        (
            ["compare", "--case", "mnist", "--quantile", "1.5"],
            r"argument --quantile: expected a number in \(0, 1\), got '1.5'",
        ),
        (["transpose", "s.npy", "--max-memory", "-5"], "argument --max-memory: expected an integer >= 1, got -5"),
        (["explain", "--bogus"], "unrecognized arguments|required"),
    ],
)
def test_bad_options_are_refused_while_parsing_in_one_line(capsys, argv, pattern):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1, err
    assert re.search(pattern, err[0]), err[0]


def test_transpose_refuses_other_stores_and_creates_the_out_folder(tmp_path, capsys):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("Y", data=np.zeros((6, 2), np.float32))
    one_line(capsys, ["transpose", str(tmp_path / "a.h5")], "transpose converts a sample-major .npy; .* is a .h5 store")
    np.save(tmp_path / "a.npy", np.arange(12, dtype=np.float32).reshape(6, 2))
    out = tmp_path / "new" / "deeper" / "a.neurons.npy"
    assert main(["transpose", str(tmp_path / "a.npy"), "--out", str(out)]) == 0
    assert np.array_equal(np.load(out), np.arange(12, dtype=np.float32).reshape(6, 2).T)


def test_report_on_json_says_so(tmp_path, capsys):
    x = torch.rand(20, 2)
    res = inv.explain(x, torch.rand(20, 3) < 0.5, L=1, B=1)
    res.to_json(tmp_path / "l.json")
    one_line(
        capsys,
        ["report", str(tmp_path / "l.json"), "--out", str(tmp_path / "r.html")],
        "is a JSON labels file; report reads the labels CSV",
    )


def test_compare_checks_pandas_before_computing(tmp_path, capsys, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pandas(name, *a, **k):
        if name == "pandas":
            raise ImportError("no pandas here")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    one_line(
        capsys,
        ["compare", "--case", "mnist", "--out", str(tmp_path / "c")],
        "compare: writing the comparison table needs pandas",
    )
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
    shutil.rmtree(tmp_path / "c", ignore_errors=True)
