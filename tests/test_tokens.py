"""Token concepts from the tokenizer alone (concepts/tokens.py) equal a per-token brute force, and label a
planted next-token neuron."""

import unicodedata

import pytest
import torch

import invert_fast as inv
from invert_fast.concepts.tokens import token_concepts, visible

transformers = pytest.importorskip("transformers")

CORPUS = [
    "The cat sat on the mat, and the dog sat too.",
    "In 1999 the dog ran 42 miles; the cat did not!",
    "A bird sang. The bird flew over the old barn.",
    "Cats and dogs: 7 of them sat in the sun.",
]


def byte_bpe(vocab_size: int = 120, every_byte: bool = False):
    """A byte-level BPE trained on CORPUS; every_byte: all 256 bytes in its alphabet (so any text round-trips;
    without, bytes the corpus lacks are dropped), vocab_size then above 258."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet() if every_byte else []
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<eos>"], initial_alphabet=alphabet)
    tok.train_from_iterator(CORPUS * 5, trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def captured(tok, corpus=CORPUS, max_length=None):
    """The TokenIndex of the corpus, tokenized one text at a time (no model: tokens, sequences, positions)."""
    enc = [tok(t, truncation=max_length is not None, max_length=max_length)["input_ids"] for t in corpus]
    tokens = torch.tensor([i for e in enc for i in e])
    sequence = torch.repeat_interleave(torch.arange(len(enc)), torch.tensor([len(e) for e in enc]))
    position = torch.cat([torch.arange(len(e)) for e in enc])
    return inv.TokenIndex(tokens, sequence, position)


def brute(tok, tokens, sequence, position, names):
    """Every concept of every token, from its definition in concepts/tokens.py."""
    special = set(tok.all_special_ids)

    def lexical(i, first):
        text = "" if i in special else tok.decode([i])
        st = text.strip()
        letters = [c for c in st if c.isalpha()]
        return {
            "word start": first or text[:1].isspace() or tok.convert_ids_to_tokens(i).startswith("Ġ"),
            "capitalized": bool(letters) and letters[0].isupper(),
            "digit": bool(st) and st.isdigit(),
            "punctuation": bool(st) and all(unicodedata.category(c)[0] in "PS" for c in st),
            "special": i in special,
        }

    rows = []
    n = tokens.numel()
    for j in range(n):
        t, first = int(tokens[j]), j == 0 or sequence[j] != sequence[j - 1]
        last = j == n - 1 or sequence[j + 1] != sequence[j]
        own = {**lexical(t, first), **{f"tok={visible(tok.decode([t]))}": True}}
        row = dict(own)
        if first:
            row["prev:none"] = True
        else:
            pt, pfirst = int(tokens[j - 1]), j - 1 == 0 or sequence[j - 1] != sequence[j - 2]
            prev = {**lexical(pt, pfirst), **{f"tok={visible(tok.decode([pt]))}": True}}
            row.update({f"prev:{k}": v for k, v in prev.items()})
        if last:
            row["next:none"] = True
        else:
            nt = int(tokens[j + 1])
            nxt = {**lexical(nt, False), **{f"tok={visible(tok.decode([nt]))}": True}}
            row.update({f"next:{k}": v for k, v in nxt.items()})
        p = int(position[j])
        row["pos=0" if p == 0 else "pos=1" if p == 1 else next(nm for nm in names if nm.startswith("pos=") and "-" in nm
             and int(nm[4:].split("-")[0]) <= p <= int(nm.split("-")[1]))] = True  # fmt: skip
        rows.append([bool(row.get(nm, False)) for nm in names])
    return torch.tensor(rows)


def test_token_concepts_equal_their_definitions():
    tok = byte_bpe()
    index = captured(tok)
    tokens, sequence, position = index.tokens, index.sequence, index.position
    cs = token_concepts(tok, index, top=200)  # every id that occurs has its identity
    assert cs.names[:5] == ("word start", "capitalized", "digit", "punctuation", "special")
    assert torch.equal(cs.dense(), brute(tok, tokens, sequence, position, cs.names))
    assert cs._bits is not None  # dense() above built them; the search would not have needed to
    assert {"tok=␣the", "next:tok=␣the", "prev:punctuation", "next:none", "pos=2-3"} <= set(cs.names)


def test_next_token_neuron_gets_its_label():
    tok = byte_bpe()
    index = captured(tok)
    tokens = index.tokens
    cs = token_concepts(tok, index, top=30)
    g = torch.Generator().manual_seed(0)
    the = cs.mask("next:tok=␣the")
    x = (the.float() * 2 + torch.randn(tokens.numel(), generator=g) * 0.3).unsqueeze(1)
    res = inv.explain(x, cs, L=1, B=1)
    assert str(res[0][0].formula) == "next:tok=␣the" and res[0][0].auc > 0.95


def test_token_table_errors():
    tok = byte_bpe()
    index = captured(tok)
    tokens, sequence, position = index.tokens, index.sequence, index.position
    with pytest.raises(ValueError, match=r"expected samples in \(sequence, position\) order"):
        inv.TokenIndex(tokens.flip(0), sequence.flip(0), position.flip(0))
    with pytest.raises(ValueError, match=r"tokens: ids must lie in \[0, 120\)"):
        token_concepts(tok, inv.TokenIndex(tokens + 500, sequence, position), vocab=120)
    with pytest.raises(ValueError, match="expected three \\[N\\] arrays"):
        inv.TokenIndex(tokens[:-1], sequence, position)
    with pytest.raises(TypeError, match="index: expected a TokenIndex"):
        token_concepts(tok, tokens)
