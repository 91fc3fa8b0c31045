"""The token index (core/token_index.py): one type for a capture's tokens and a delphi cache's, with texts
and character offsets; offsets from token_batches equal the tokenizer's own, decoded offsets equal a
per-byte brute force, and linguistic concepts built from a delphi cache equal those of the capture."""

import re

import numpy as np
import pytest
import torch

import invert_fast as inv

from .test_linguistic import nlp  # noqa: F401  (the spaCy fixture)
from .test_tokens import CORPUS, byte_bpe, captured

transformers = pytest.importorskip("transformers")
HARD = [
    "I can't believe it's 3.5 km—isn't it?",
    "A well-known café in São Paulo: naïve   co-operation (x2).",
    "日本語のテキスト and emoji 🙂 in one line",
    "   Leading spaces, then Zürich's 42nd floor.",
]


def bytes_to_unicode():
    """GPT-2's byte-level alphabet: byte b -> the character a byte-level BPE token spells it with."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def brute_offsets(tok, ids):
    """Per token: (start, end) = the number of whole characters in the UTF-8 bytes of the tokens before it and
    up to it (incomplete characters at the end do not count), from each token's bytes."""
    to_byte = bytes_to_unicode()
    special = set(tok.all_special_ids)
    data, out, end = b"", [], 0
    for i, piece in zip(ids, tok.convert_ids_to_tokens(ids), strict=True):
        if i not in special:
            data += bytes(to_byte[c] for c in piece)
        start, end = end, len(data.decode("utf-8", errors="ignore"))
        out.append((start, end))
    return out


def test_decoded_offsets_equal_a_per_byte_brute_force():
    tok = byte_bpe(330, every_byte=True)  # few merges: Unicode falls into byte pieces, CJK into three a char
    index = captured(tok, HARD).with_text(tok)  # no texts given: decoded from the ids
    assert index.texts == tuple(HARD)  # byte-level BPE round-trips exactly
    b = index.bounds
    for i in range(len(HARD)):
        ids = index.tokens[b[i] : b[i + 1]].tolist()
        assert index.offsets[b[i] : b[i + 1]].tolist() == [list(x) for x in brute_offsets(tok, ids)]
    pieces = index.pieces()
    assert "".join(pieces[b[2] : b[3]]) == HARD[2]
    assert sum(p == "" for p in pieces[b[2] : b[3]]) >= 9  # the first bytes of 9 CJK characters: empty spans


def test_a_special_token_has_an_empty_span_and_decoding_checks_what_it_is_given():
    tok = byte_bpe()
    eos = tok.convert_tokens_to_ids("<eos>")
    ids = tok(CORPUS[0])["input_ids"] + [eos]
    index = inv.TokenIndex(torch.tensor(ids), torch.zeros(len(ids), dtype=torch.long), torch.arange(len(ids)))
    dec = index.with_text(tok)
    assert dec.texts == (CORPUS[0],) and dec.offsets[-1].tolist() == [len(CORPUS[0])] * 2
    with pytest.raises(TypeError, match="tokenizer: expected a tokenizer with decode"):
        index.with_text(object())


def test_capture_and_delphi_give_one_index_and_the_same_linguistic_concepts(tmp_path, nlp):  # noqa: F811
    from safetensors.numpy import save_file

    from invert_fast.concepts.linguistic import word_annotations

    tok = byte_bpe()
    # A capture of token_batches: offsets are the tokenizer's own, whatever side the padding is on.
    tok.padding_side = "left"
    batches = inv.token_batches(tok, CORPUS, batch_size=3)
    model = EchoModel()
    caps = inv.capture_tokens(model, batches, {"emb": "emb"})
    own = captured(tok).with_text(tok, CORPUS)
    for f in ("tokens", "sequence", "position", "offsets"):
        assert torch.equal(getattr(caps.index, f), getattr(own, f)), f
    assert caps.index.texts == tuple(CORPUS)
    # The same tokens as delphi stores them (a [S, T] grid: every sequence T tokens; here one per text,
    # cut to the shortest so no padding is stored), decoded back to text.
    t = min(int(b) - int(a) for a, b in zip(own.bounds[:-1], own.bounds[1:], strict=True))
    grid = np.stack([own.tokens[a : a + t].numpy() for a in own.bounds[:-1]])
    folder = tmp_path / "layers.0"
    folder.mkdir()
    loc = np.array([[0, 0, 0]], dtype=np.uint16)
    save_file(
        {"locations": loc, "activations": np.ones(1, np.float16), "tokens": grid}, str(folder / "0_0.safetensors")
    )
    cache = inv.NeuronStore(folder)
    index = cache.token_index(tok)
    assert torch.equal(index.tokens, torch.from_numpy(grid.reshape(-1)))
    assert index.n_sequences == len(CORPUS) and index.position.tolist() == list(range(t)) * len(CORPUS)
    cut = captured(tok, max_length=t).with_text(tok, CORPUS, max_length=t)
    assert index.texts == tuple(
        "".join(cut.pieces()[a:b]) for a, b in zip(cut.bounds[:-1], cut.bounds[1:], strict=True)
    )
    words, cut_words = word_annotations(nlp, index, lexnames=False), None
    # spaCy parses the cut text of the cache as it parses the cut text of a capture given those texts.
    cut_words = word_annotations(nlp, cut.with_text(tok, index.texts), lexnames=False)
    assert words.names == cut_words.names and words.words == cut_words.words
    assert np.array_equal(words.codes, cut_words.codes) and np.array_equal(words.next_codes, cut_words.next_codes)
    a = inv.token_concepts(tok, index, top=5, words=words)
    b = inv.token_concepts(tok, cut.with_text(tok, index.texts), top=5, words=cut_words)
    assert a.names == b.names and torch.equal(a.dense(), b.dense())


class EchoModel(torch.nn.Module):
    """A 'model' whose one layer is the token ids as a feature: enough to exercise the capture's index."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(200, 2)

    def forward(self, input_ids, attention_mask):
        return self.emb(input_ids)


def test_index_errors_are_one_line_and_save_load_round_trips(tmp_path):
    tok = byte_bpe()
    index = captured(tok).with_text(tok, CORPUS)
    back = inv.TokenIndex.load(index.save(tmp_path / "idx"))
    assert back.texts == index.texts and torch.equal(back.offsets, index.offsets)
    assert torch.equal(back.tokens, index.tokens) and torch.equal(back.position, index.position)
    t, s, p = index.tokens, index.sequence, index.position
    with pytest.raises(ValueError, match=r"texts, offsets: expected both"):
        inv.TokenIndex(t, s, p, texts=CORPUS)
    with pytest.raises(ValueError, match=r"texts: expected one text per sequence \(4\), got 3"):
        inv.TokenIndex(t, s, p, CORPUS[:3], index.offsets)
    bad = index.offsets.clone()
    bad[3] = torch.tensor([2, 500])
    with pytest.raises(ValueError, match=r"offsets: token 3 spans characters \[2, 500\], outside its text"):
        inv.TokenIndex(t, s, p, CORPUS, bad)
    with pytest.raises(ValueError, match=r"offsets: expected \[\d+, 2\] character spans"):
        inv.TokenIndex(t, s, p, CORPUS, index.offsets[:-1])
    with pytest.raises(ValueError, match=r"sequences numbered 0, 1, \.\.\. without gaps"):
        inv.TokenIndex(t, s * 2, p)
    with pytest.raises(FileNotFoundError, match=r"lacks the token index's tokens.npy"):
        inv.TokenIndex.load(tmp_path)
    with pytest.raises(ValueError, match=r"tokens: expected a \[sequences, context length\] grid"):
        inv.TokenIndex.from_grid(t)


def test_token_texts_keep_the_spaces_between_tokens():
    tok = byte_bpe()
    index = captured(tok).with_text(tok, CORPUS)
    t, b = index.token_texts(), index.bounds
    for i, text in enumerate(CORPUS):
        assert "".join(t[b[i] : b[i + 1]]) == text


def test_report_from_a_labels_file_a_store_and_its_token_index(tmp_path, capsys):
    from invert_fast.apps.cli import main

    tok = byte_bpe()
    tok.save_pretrained(tmp_path / "tok")
    caps = inv.capture_tokens(EchoModel(), inv.token_batches(tok, CORPUS * 3, batch_size=4), {"emb": "emb"},
                              out=tmp_path / "acts")  # fmt: skip
    cs = inv.token_concepts(tok, caps.index, top=20)
    res = inv.explain(inv.NeuronStore(caps.activations["emb"]), cs, L=2, B=2, layer="emb")
    inv.write_csv(tmp_path / "labels.csv", res)
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "labels.csv"), "--activations", str(caps.activations["emb"]), "--tokens",
                 str(tmp_path / "acts"), "--tokenizer", str(tmp_path / "tok"), "--token-concepts", "tokenizer",
                 "--top-tokens", "20", "--out", str(out)]) == 0  # fmt: skip
    page = out.read_text(encoding="utf-8")
    assert page.count('<div class="ctx">') >= 2 and re.search(r'<span class="s(1?[1-9]|20)( c)?( u)?"', page)
    assert re.search(r'<span class="s\d+( c)? u"', page) and "formula holds" in page
    assert main(["report", str(tmp_path / "labels.csv"), "--activations", str(caps.activations["emb"]), "--tokens",
                 str(tmp_path), "--out", str(tmp_path / "bad.html")]) == 2  # fmt: skip
    assert "holds neither a token index" in capsys.readouterr().err


def test_report_of_a_delphi_cache_decodes_its_tokens(tmp_path):
    from safetensors.numpy import save_file

    from invert_fast.apps.cli import main

    tok = byte_bpe()
    tok.save_pretrained(tmp_path / "tok")
    own = captured(tok)
    t = 6
    grid = np.stack([own.tokens[a : a + t].numpy() for a in own.bounds[:-1]])  # [4, 6]
    rng = np.random.default_rng(0)
    n, j = np.nonzero(rng.random((grid.size, 3)) < 0.5)
    loc = np.stack([n // t, n % t, j], 1).astype(np.uint16)
    folder = tmp_path / "layers.0"
    folder.mkdir()
    vals = rng.random(len(n)).astype(np.float32) + 0.1
    save_file({"locations": loc, "activations": vals, "tokens": grid}, str(folder / "0_2.safetensors"))
    cache = inv.NeuronStore(folder)
    res = inv.explain(cache, inv.token_concepts(tok, cache.token_index(), top=5), L=1, B=1, layer="layers.0")
    inv.write_csv(tmp_path / "labels.csv", res)
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "labels.csv"), "--activations", str(folder), "--tokens", str(folder),
                 "--tokenizer", str(tmp_path / "tok"), "--out", str(out)]) == 0  # fmt: skip
    page = out.read_text(encoding="utf-8")
    assert '<div class="ctx">' in page and not re.search(r'<span class="s\d+( c)? u"', page)  # no concepts: no masks
    bare = ["report", str(tmp_path / "labels.csv"), "--activations", str(folder), "--tokens", str(folder)]
    assert main([*bare, "--out", str(out)]) == 2  # ids without text and no tokenizer: one line
