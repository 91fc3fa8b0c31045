"""invert_fast.compat: INVERT's own API and HDF5 path, and the activation formats toolkits use."""

import json

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.apps.cli import main
from invert_fast.compat import Invert, Phi, invertH5Dataset

h5py = pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """The embedded MNIST case as INVERT's notebook expects it: a saved [N, K] one-hot tensor, INVERT's
    JSON description, and the hidden layer's activations."""
    pytest.importorskip("ccexam", reason="scripts/setup.sh installs the MNIST CNN")
    from invert_fast.cases import zoo

    tmp = tmp_path_factory.mktemp("mnist")
    images, labels = zoo.load_mnist_5k()
    model = zoo.load_mnist_cnn()
    acts = inv.capture(model, [zoo.mnist_tensor(images)], {"hidden": model.classifier[1]})["hidden"]
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(labels).long(), 10).bool()
    torch.save(one_hot, tmp / "one_hot_labels.tnsr")
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    description = {
        str(i): {"name": f"digit {w}", "definition": f"a handwritten {i}", "offset": f"d{i}"}
        for i, w in enumerate(words)
    }
    (tmp / "classes.json").write_text(json.dumps(description))
    return tmp, acts, one_hot, description


def find_by_offset(search_value: str, d: dict):  # as the published notebook defines it
    for k in d:
        if d[k]["offset"] == search_value:
            return d[k]


def test_published_notebook_flow_with_only_the_import_changed(mnist, capsys):
    tmp, A, _, data = mnist
    # --- the notebook, verbatim but for the import ----------------------------------------------
    explainer = Invert(device="cpu")
    explainer.load_concept_labels(
        labels_path=str(tmp / "one_hot_labels.tnsr"), description_path=str(tmp / "classes.json")
    )
    r, L, B = 46, 3, 3
    explanation = explainer.explain_representation(A=A[:, r], L=L, B=B, min_fraction=0.002)
    best_explanation = explanation[0]
    print("Explanation for neuron {r}: ".format(r=r))  # noqa: UP032
    print(best_explanation["formula"])
    human_readable_explanation = str(best_explanation["formula"])
    for element in best_explanation["formula"]._distinct_concepts:
        label = find_by_offset(str(element), data)
        print(element, label["name"], label["definition"])
        human_readable_explanation = human_readable_explanation.replace(str(element), label["name"])
    buffer = best_explanation["formula"](explainer.memdict).cpu()
    p = explainer.get_p_value(A[:, r], best_explanation["formula"])
    # --- what it printed and computed ---------------------------------------------------------------
    out = capsys.readouterr().out
    assert str(best_explanation["formula"]) in out and "digit" in human_readable_explanation
    assert (
        explainer.num_samples == 5000
        and explainer.num_concepts == 10
        and [str(c) for c in explainer.concepts][:2] == ["d0", "d1"]
    )
    res = inv.explain(
        A[:, r : r + 1], inv.ConceptSet(explainer.labels, [f"d{i}" for i in range(10)]), L=3, B=3, min_fraction=0.002
    )
    assert [(str(e["formula"]), e["length"], e["metric"]) for e in explanation] == [
        (str(e.formula), e.length, e.auc) for e in res[0]
    ]
    assert buffer.dtype == torch.bool and torch.equal(
        buffer, res[0][0].formula.mask(inv.ConceptSet(explainer.labels, [f"d{i}" for i in range(10)]))
    )
    from scipy.stats import mannwhitneyu

    a = A[:, r].double().numpy()
    assert p == mannwhitneyu(a[~buffer.numpy()], a[buffer.numpy()]).pvalue
    text = explainer.explain_formula(best_explanation["formula"])
    assert text["label"] == human_readable_explanation and {d["description"] for d in text["details"]} <= {
        v["name"] for v in data.values()
    }


def test_explain_representation_shapes_and_states(mnist):
    tmp, A, _, _ = mnist
    ex = Invert()
    ex.load_concept_labels(tmp / "one_hot_labels.tnsr", tmp / "classes.json")
    many = ex.explain_representation(A[:, :4], L=2, B=2)
    assert len(many) == 4 and all(len(u) == 2 for u in many)
    states = ex.explain_representation(A[:, 7], L=3, B=2, memorize_states=True)
    assert list(states) == ["1", "2", "3"] and all(len(v) == 2 for v in states.values())
    assert [str(e["formula"]) for e in states["3"]] == [
        str(e["formula"]) for e in ex.explain_representation(A[:, 7], L=3, B=2)
    ]
    assert all(e["length"] == 1 for e in states["1"])


def test_phi_combines_like_invert(mnist):
    tmp, _, one_hot, _ = mnist
    ex = Invert()
    ex.load_concept_labels(tmp / "one_hot_labels.tnsr", tmp / "classes.json")
    a, b = Phi("d1"), Phi("d2")
    f = (a | b) & ~Phi("d3")
    assert str(f) == "(d1 | d2) & ~d3" and [str(c) for c in f._distinct_concepts] == ["d1", "d2", "d3"]
    assert torch.equal(f(ex.memdict), one_hot[:, 1] | one_hot[:, 2])
    with pytest.raises(KeyError, match="memdict: no concept 'zz'"):
        Phi("zz")(ex.memdict)


def test_h5_path_streams_and_equals_explain(mnist, tmp_path):
    _, A, one_hot, _ = mnist
    tmp = mnist[0]
    with invertH5Dataset(tmp_path / "acts.h5", rows_per_chunk=256) as ds:
        for i in range(0, 5000, 700):  # batches of activations as a model produces them
            ds.update(A[i : i + 700].reshape(-1, 2, 64))  # rows are flattened
    with h5py.File(tmp_path / "acts.h5") as f:
        assert f["Y"].shape == (5000, 128) and f["Y"].maxshape == (None, 128) and f["Y"].chunks == (256, 128)
    ex = Invert()
    ex.load_concept_labels(tmp / "one_hot_labels.tnsr", tmp / "classes.json")
    got = ex.explain_from_h5(tmp_path / "acts.h5", L=2, B=3, min_fraction=0.01, feature_batch_size=50)
    want = ex.explain_representation(A, L=2, B=3, min_fraction=0.01)
    assert len(got) == 128 and [[(str(e["formula"]), e["metric"]) for e in u] for u in got] == [
        [(str(e["formula"]), e["metric"]) for e in u] for u in want
    ]


def test_formats_give_byte_identical_labels(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    g = np.random.default_rng(0)
    acts = g.normal(size=(300, 9)).astype(np.float32)
    y = g.integers(0, 6, 300)
    acts[:, 0] += 2 * (y == 3)
    np.save(tmp_path / "a.npy", acts)
    np.save(tmp_path / "y.npy", y)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("Y", data=acts, chunks=(64, 9))
    safetensors.save_file({"blocks.0.mlp": torch.from_numpy(acts)}, str(tmp_path / "a.safetensors"))
    torch.save({"layer": torch.from_numpy(acts)}, tmp_path / "a.pt")
    outs = {}
    for name in ("a.npy", "a.h5", "a.safetensors", "a.pt"):
        out = tmp_path / f"{name}.csv"
        args = ["explain", "--activations", str(tmp_path / name), "--labels", str(tmp_path / "y.npy"), "-L", "3"]
        assert main([*args, "-B", "4", "--out", str(out), "--chunk", "4"]) == 0
        outs[name] = out.read_bytes()
    assert len(set(outs.values())) == 1
    store = inv.NeuronStore(tmp_path / "a.h5")
    direct = inv.explain(store, inv.ConceptSet.from_classes(y, [f"class{i}" for i in range(6)]), L=3, B=4)
    direct.to_csv(tmp_path / "direct.csv")
    assert (tmp_path / "direct.csv").read_bytes() == outs["a.npy"]


def test_format_errors(tmp_path, capsys):
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f.create_dataset("a", data=np.zeros((4, 2)))
        f.create_dataset("b", data=np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"holds \['a', 'b'\]; pick one with key="):
        inv.NeuronStore(tmp_path / "two.h5")
    assert inv.NeuronStore(tmp_path / "two.h5", key="b").shape == (4, 3)
    with pytest.raises(KeyError, match="has no entry 'c'"):
        inv.NeuronStore(tmp_path / "two.h5", key="c")
    np.save(tmp_path / "y.npy", np.zeros(4, int))
    args = [
        "explain",
        "--activations",
        str(tmp_path / "two.h5"),
        "--labels",
        str(tmp_path / "y.npy"),
        "--out",
        str(tmp_path / "o.csv"),
    ]
    assert main(args) == 2 and "pick one with key= (--activations-key)" in capsys.readouterr().err
    assert main([*args, "--activations-key", "a"]) == 0
