"""The spurious-correlation audit (io/audit.py): exact logit shifts and ablations on a hand-built model,
the planted shortcut found in a CNN trained here and nothing flagged in its clean twin, one-line errors."""

import numpy as np
import pytest
import torch
from torch import nn

import invert_fast as inv
from invert_fast.io.audit import audit


class HandBuilt(nn.Module):
    """x [N, 3] -> hidden = relu(x) (unit 0 reads the nuisance feature x0) -> logits = W hidden."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.ReLU()
        self.out = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.out.weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [3.0, 0.0, 1.0]]))

    def forward(self, x):
        return self.out(self.hidden(x))


def test_logit_shift_and_ablation_are_exact_on_a_hand_built_model():
    g = torch.Generator().manual_seed(0)
    n = 400
    nuis = torch.rand(n, generator=g) < 0.5
    cls = torch.rand(n, generator=g) < 0.5
    x = torch.stack([nuis.float(), cls.float() + 0.1 * torch.rand(n, generator=g),
                     0.5 * torch.rand(n, generator=g)], 1)  # fmt: skip
    concepts = inv.ConceptSet(torch.stack([nuis, cls], 1), ["mark", "class 0"])
    clean = x.clone()
    clean[:, 0] = 0
    marked = clean.clone()
    marked[:, 0] = 1
    y = (~cls).long()  # class 0 where x1 is high: logit 0 = x1, logit 1 = 3 x0 + x2
    a = audit(HandBuilt().eval(), x, concepts, "mark", ["hidden"], output="out", clean=clean, with_nuisance=marked,
              labels=y, permutations=19)  # fmt: skip
    assert [(f.layer, f.unit) for f in a.flagged] == [("hidden", 0)] and a.flagged[0].auc_alone == 1.0
    assert "mark" in a.flagged[0].label.formula.positive_concepts()  # ("mark" alone covers > max_fraction 0.5)
    assert np.allclose(a.logit_shift, [0.0, 3.0], atol=1e-6)  # W[:, 0] x (1 - 0)
    want = (torch.stack([clean[:, 1], 3 * clean[:, 0] + clean[:, 2]], 1).argmax(1) == y).double().mean()
    assert a.accuracy["clean"] == pytest.approx(float(want))
    assert a.predicted["nuisance"][1] == 1.0  # the mark pushes every input to class 1
    # Ablated: unit 0 replaced by its mean over the clean inputs (0): the mark no longer matters.
    assert a.accuracy["nuisance, ablated"] == a.accuracy["clean, ablated"] == a.accuracy["clean"]
    text = a.text()
    assert "1 of 3 units flagged" in text and "hidden:0" in text


def test_the_planted_shortcut_is_found_and_the_clean_twin_flags_nothing(tmp_path):
    pytest.importorskip("numpy")
    from invert_fast.apps.audits import LAYERS, shortcut_case
    from invert_fast.cases import shortcut

    try:
        x, cs, clean, patched, y = shortcut_case(n_audit=2000)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    found = {}
    for kind in (True, False):  # a smaller training run than the CLI's (12,000 images): seconds
        model = shortcut.train_fashion_cnn(kind, n_train=12_000, epochs=2, cache=tmp_path)
        again = shortcut.train_fashion_cnn(kind, n_train=12_000, epochs=2, cache=tmp_path)  # from the cache
        assert all(
            torch.equal(p, q) for p, q in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
        )
        found[kind] = audit(model, x, cs, "patch", LAYERS, output="classifier.2", clean=clean, with_nuisance=patched,
                            labels=y, permutations=19)  # fmt: skip
    cut, ok = found[True], found[False]
    assert cut.flagged and not ok.flagged
    assert int(np.argmax(cut.logit_shift)) == shortcut.SHORTCUT_CLASS  # the patch pulls towards Shirt
    s = shortcut.SHORTCUT_CLASS
    assert cut.predicted["nuisance"][s] > cut.predicted["clean"][s] + 0.3
    assert cut.predicted["nuisance, ablated"][s] < cut.predicted["nuisance"][s]  # ablation undoes part of it
    assert ok.predicted["nuisance"][s] < ok.predicted["clean"][s] + 0.05
    assert len(list((tmp_path).glob("fashion_cnn_*.pt"))) == 2


def test_bad_input_is_one_line():
    x = torch.rand(50, 3)
    cs = inv.ConceptSet(torch.rand(50, 1) < 0.5, ["mark"])
    kw = dict(output="out", clean=x, with_nuisance=x, labels=torch.zeros(50, dtype=torch.long))
    model = HandBuilt().eval()
    with pytest.raises(ValueError, match=r"nuisance: expected one of the concepts' names, got 'patch'"):
        audit(model, x, cs, "patch", ["hidden"], **kw)
    with pytest.raises(ValueError, match=r"permutations: expected an integer >= 1"):
        audit(model, x, cs, "mark", ["hidden"], permutations=0, **kw)
    with pytest.raises(ValueError, match=r"clean, with_nuisance, labels: expected \[M, \.\.\.\]"):
        audit(model, x, cs, "mark", ["hidden"], output="out", clean=x, with_nuisance=x[:10], labels=kw["labels"])
    with pytest.raises(ValueError, match=r"min_effect: expected a number in \(0, 0.5\]"):
        audit(model, x, cs, "mark", ["hidden"], min_effect=0.7, **kw)
    with pytest.raises(ValueError, match=r"concepts: expected concepts over the 40 audit inputs, got 50"):
        audit(model, x[:40], cs, "mark", ["hidden"], **kw)


def test_the_text_overlay_darkens_a_bottom_strip_only():
    pytest.importorskip("PIL")
    from invert_fast.cases import shortcut, zoo

    try:
        mask = shortcut.text_mask(160)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    rows, cols = mask.nonzero(as_tuple=True)
    assert mask.sum() > 300 and rows.min() >= 160 * 2 // 3 and cols.max() >= 150  # a bottom strip, right-aligned
    images = (np.random.default_rng(0).random((3, 28, 28)) * 255).astype(np.uint8)
    plain = shortcut.imagenet_tensor_with_text(images, 160, None)
    assert torch.equal(plain, zoo.imagenet_tensor(images, size=160))  # the same arithmetic, the same shapes
    texted = shortcut.imagenet_tensor_with_text(images, 160, mask)
    assert torch.equal(texted[:, :, ~mask], plain[:, :, ~mask]) and (texted[:, :, mask] < plain[:, :, mask]).all()


def test_the_output_module_itself_can_be_audited():
    g = torch.Generator().manual_seed(1)
    n = 300
    nuis = torch.rand(n, generator=g) < 0.5
    x = torch.stack([nuis.float(), torch.rand(n, generator=g), torch.rand(n, generator=g)], 1)
    cs = inv.ConceptSet(nuis.unsqueeze(1), ["mark"])
    clean = x.clone()
    clean[:, 0] = 0
    marked = clean.clone()
    marked[:, 0] = 1
    a = audit(HandBuilt().eval(), x, cs, "mark", ["out"], output="out", clean=clean, with_nuisance=marked,
              labels=None, permutations=19)  # fmt: skip
    assert [(f.layer, f.unit) for f in a.flagged] == [("out", 1)] and a.accuracy == {}
    assert np.allclose(a.logit_shift, [0.0, 3.0], atol=1e-6)
    assert a.flipped["ablated"] == 0.0  # logit 1 mean-replaced: the mark changes nothing any more
