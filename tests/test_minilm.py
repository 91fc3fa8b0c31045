"""all-MiniLM-L6-v2 in plain torch against transformers' output, the lexicon concepts, and the MiniLM case."""

import csv

import numpy as np
import pytest
import torch

from invert_fast.apps.cli import main
from invert_fast.cases.minilm import batch, load_minilm
from invert_fast.concepts.lexicons import Lexicon, token_concepts, wordnet_sentences

TEXTS = ["a cat sat on the mat", "Unbelievably, the café's déjà-vu tokenization worked!"]
# Printed by transformers 5.24.0 (BertModel + BertTokenizerFast from the same package folder,
# HF_HUB_OFFLINE=1) on 2026-11-27: token ids, mean-pooled normalized embeddings [:, :4], and the
# layer-5 MLP (intermediate) activations of text 1, token 3, neurons 0-3.
IDS = [
    [101, 1037, 4937, 2938, 2006, 1996, 13523, 102] + [0] * 12,
    [
        101,
        4895,
        8671,
        2666,
        3567,
        6321,
        1010,
        1996,
        7668,
        1005,
        1055,
        2139,
        3900,
        1011,
        24728,
        19204,
        3989,
        2499,
        999,
        102,
    ],
]
EMBED = [0.12337, -0.02018, -0.02907, 0.05043, -0.0723, -0.03193, 0.04772, 0.03163]
MLP5 = [-0.16335, -0.16439, -0.13215, -0.05575]


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def test_tokens_and_activations_equal_transformers(minilm):
    model, tok = minilm
    ids, mask, _ = batch(tok, TEXTS)
    assert ids.tolist() == IDS and mask.sum(1).tolist() == [8, 20]
    out = []
    hook = model.encoder.layer[5].intermediate.register_forward_hook(lambda m, i, o: out.append(o))
    with torch.no_grad():
        emb = model.embed(ids, mask)
    hook.remove()
    np.testing.assert_allclose(emb[:, :4].flatten().numpy(), EMBED, atol=2e-5)
    np.testing.assert_allclose(out[0][1, 3, :4].numpy(), MLP5, atol=2e-5)
    try:  # and against transformers itself where it is installed
        from transformers import AutoModel
    except ImportError:
        return
    from invert_fast.cases.minilm import model_dir

    ref = AutoModel.from_pretrained(str(model_dir())).eval()
    with torch.no_grad():
        want = ref(input_ids=ids, attention_mask=mask).last_hidden_state
        assert (model(ids, mask) - want).abs().max() < 1e-4


def test_lexicon_concepts():
    lx = Lexicon()
    assert {"noun", "animal"} <= lx.concepts("dogs") and "verb" in lx.concepts("ran")
    assert {"food", "noun"} <= lx.concepts("apple") and "verb" in lx.concepts("is")  # (and "i", the noun)
    assert {"positive word", "joy"} <= lx.concepts("happy") and "negative word" in lx.concepts("murder")
    assert lx.concepts(",") == {"punctuation"} and lx.concepts("42") == {"number"}
    cs = token_concepts(lx, [("dogs", False), ("##s", True)])
    assert cs.mask("animal").tolist() == [True, False] and cs.mask("continuation piece").tolist() == [False, True]
    sentences = wordnet_sentences()
    assert len(sentences) > 30_000 and all(len(s.split()) >= 4 for s in sentences[:100])


def test_minilm_case_runs(tmp_path, capsys):
    out = tmp_path / "minilm"
    assert main(["demo", "--case", "minilm", "--samples", "120", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "6 layers x 1536 MLP neurons" in text and "120 WordNet example sentences" in text
    for i in range(6):
        acts = np.load(out / "activations" / f"layer{i}.npy", mmap_mode="r")
        assert acts.shape[1] == 1536 and np.isfinite(acts).all()
    with open(out / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["layer"] for r in rows} == {f"layer{i}" for i in range(6)}
    assert len({(r["layer"], r["neuron"]) for r in rows}) == 6 * 1536
    # Word-piece continuations are the clearest signal in the first layers: some neuron separates them.
    best = max(float(r["auc"]) for r in rows if r["formula"] == '"continuation piece"')
    assert best > 0.95
    assert "all-MiniLM-L6-v2" in (out / "report.html").read_text()
