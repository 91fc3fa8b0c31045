"""Concepts of the tokens of any tokenized text, from the tokenizer alone: lexical features, frequent token
identities, the same for the previous and the next token, and the position in the sequence.

Every concept is a function of four codes per token (its id, the previous token's id, the next token's
id, a position bucket), so the set is ConceptSet.from_ids over [N, 4] codes and four small tables: no
[N, K] matrix at any N. Names read without a legend:

- `word start`: the token's text begins with whitespace (GPT-2/Llama byte-level BPE "Ġ", SentencePiece
  "▁"), or it is the first real token of its sequence; a word split into several tokens starts only at
  its first. `capitalized`: its first letter is upper case. `digit`: its text (stripped) is all digits.
  `punctuation`: all punctuation or symbol characters (Unicode categories P*, S*). `special`: one of the
  tokenizer's special tokens (BOS, EOS, pad, ...).
- `tok=␣the`: the token is exactly that one (the `top` most frequent ids of the text): its decoded text
  with spaces shown as ␣ (so " the" and "the" stay apart) and control characters escaped as in JSON.
- `prev:<concept>`, `next:<concept>`: the previous / next token of the same sequence has it;
  `prev:none` / `next:none`: there is none (first / last token of its sequence).
- `pos=0`, `pos=1`, `pos=2-3`, `pos=4-7`, ...: the position among the sequence's real tokens.

Example:
    >>> caps = capture_tokens(model, token_batches(tok, texts), mlp_neurons(model))
    >>> concepts = token_concepts(tok, caps.index, top=50)
"""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import torch

from ..core.concepts import ConceptSet
from ..core.token_index import TokenIndex
from ..core.validate import as_integers, check_positive_int

LEXICAL = ("word start", "capitalized", "digit", "punctuation", "special")
_SPACE_MARKS = ("Ġ", "▁", " ", "\t", "\n")


def visible(text: str) -> str:
    """A token's text for a concept name: JSON escapes for control characters, spaces as ␣.

    Example:
        >>> visible(" the\n")
        '␣the\\n'
    """
    return json.dumps(text, ensure_ascii=False)[1:-1].replace(" ", "␣")


def lexical_table(tokenizer, vocab: int) -> np.ndarray:
    """[vocab, 5] bool LEXICAL features of every token id (word start from the token's text only)."""
    raw = tokenizer.convert_ids_to_tokens(list(range(vocab)))
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    out = np.zeros((vocab, len(LEXICAL)), dtype=bool)
    for v in range(vocab):
        text = tokenizer.decode([v]) if v not in special else ""
        piece = raw[v] or ""
        stripped = text.strip()
        letters = [c for c in stripped if c.isalpha()]
        out[v, 0] = piece.startswith(_SPACE_MARKS) or text[:1].isspace()
        out[v, 1] = bool(letters) and letters[0].isupper()
        out[v, 2] = bool(stripped) and stripped.isdigit()
        out[v, 3] = bool(stripped) and all(unicodedata.category(c)[0] in "PS" for c in stripped)
        out[v, 4] = v in special
    return out


def position_buckets(position: torch.Tensor, longest: int) -> tuple[torch.Tensor, list[str]]:
    """([N] bucket of every position, bucket names): 0, 1, 2-3, 4-7, ... up to the longest position.

    Example:
        >>> position_buckets(torch.tensor([0, 1, 2, 3, 4, 9]), 9)
        (tensor([0, 1, 2, 2, 3, 4]), ['pos=0', 'pos=1', 'pos=2-3', 'pos=4-7', 'pos=8-15'])
    """
    names, starts, lo = ["pos=0"], [0], 1
    while lo <= longest:
        hi = max(1, 2 * lo - 1)
        names.append(f"pos={lo}" if lo == hi else f"pos={lo}-{hi}")
        starts.append(lo)
        lo = hi + 1
    bucket = torch.bucketize(position, torch.tensor(starts[1:], dtype=position.dtype), right=True)
    return bucket, names


def token_concepts(tokenizer, index: TokenIndex, *, top: int = 50, vocab: int | None = None, words=None) -> ConceptSet:
    """The concepts of every token of a captured text (module docstring): lexical, frequent identities,
    previous / next token, position bucket, and with `words` the word annotations of the token's word and of
    the previous and next word (`upos=NOUN`, `prev:upos=DET`, `next:dep=punct`, ...).

    Args:
        tokenizer: a Hugging Face tokenizer (convert_ids_to_tokens, decode, all_special_ids).
        index: the TokenIndex of the N samples (capture_tokens(...).index, DelphiCache.token_index(), or
            TokenIndex(tokens, sequence, position) from [N] arrays in (sequence, position) order).
        top: identity concepts for the `top` most frequent token ids (ties: smaller id first).
        vocab: the vocabulary size (default: len(tokenizer), or beyond the largest id).
        words: optional WordAnnotations of the same N tokens (concepts.linguistic.word_annotations).

    Returns:
        ConceptSet over N samples (from_ids: [N, 4] codes, [N, 7] with words; no [N, K] matrix).

    Example:
        >>> cs = token_concepts(tok, caps.index, top=20)
        >>> cs.names[:3]
        ('word start', 'capitalized', 'digit')
    """
    if not isinstance(index, TokenIndex):
        raise TypeError(f"index: expected a TokenIndex (capture_tokens(...).index), got {type(index).__name__}")
    t, s, p = index.tokens, index.sequence, index.position  # checked by TokenIndex: [N], in order
    top = check_positive_int(top, "top", 0)
    n = t.numel()
    if n == 0:
        raise ValueError("index: there are no tokens (N = 0)")
    v = int(vocab) if vocab is not None else max(len(tokenizer), int(t.max()) + 1)
    if int(t.min()) < 0 or int(t.max()) >= v:
        raise ValueError(f"tokens: ids must lie in [0, {v}) (the vocabulary), got {int(t.min())} to {int(t.max())}")
    # Codes: a token id v, or v + (V + 1) for a token that starts its sequence (word start by the rule
    # above), V for "no token" (before the first / after the last of a sequence).
    none, shift = v, v + 1
    first = torch.ones(n, dtype=torch.bool)
    first[1:] = s[1:] != s[:-1]
    last = torch.ones(n, dtype=torch.bool)
    last[:-1] = first[1:]
    own = t + first.long() * shift
    prev = torch.where(first, none, torch.roll(own, 1))
    nxt = torch.where(last, none, torch.roll(t, -1))  # a next token never starts its sequence

    lex = lexical_table(tokenizer, v)  # [V, 5]
    counts = torch.bincount(t, minlength=v)
    k = min(top, int((counts > 0).sum()))
    frequent = sorted(range(v), key=lambda i: (-int(counts[i]), i))[:k]
    ident = np.zeros((v, k), dtype=bool)
    ident[frequent, range(k)] = True
    id_names = [f"tok={visible(tokenizer.decode([i]))}" for i in frequent]
    if len(set(id_names)) < k:  # two ids with one text: tell them apart by id
        id_names = [f"{name}#{i}" for name, i in zip(id_names, frequent, strict=True)]
    base = np.concatenate([lex, ident], 1)  # [V, 5 + k]
    starts = base.copy()
    starts[:, 0] = True  # the first token of a sequence starts a word
    width = base.shape[1]
    blank = np.zeros((1, width), dtype=bool)
    table = np.concatenate([base, blank, starts, blank])  # [2 (V + 1), 5 + k], rows = codes
    is_none = np.zeros((table.shape[0], 1), dtype=bool)
    is_none[none] = True
    neigh = np.concatenate([table, is_none], 1)  # prev / next: one more concept, "none"
    bucket, pos_names = position_buckets(p, int(p.max()))
    names_base = list(LEXICAL) + id_names
    names = (
        names_base
        + [f"prev:{x}" for x in names_base] + ["prev:none"]
        + [f"next:{x}" for x in names_base] + ["next:none"]
        + pos_names
    )  # fmt: skip
    columns = [own, prev, nxt, bucket]
    tables = [table, neigh, neigh, np.eye(len(pos_names), dtype=bool)]
    if words is not None:
        w, wp, wn = (as_integers(getattr(words, f), f"words.{f}").long() for f in ("codes", "prev_codes", "next_codes"))
        if not (w.shape == wp.shape == wn.shape == t.shape):
            raise ValueError(
                f"words: expected annotations of the {n} tokens, got {w.numel()} (made from other texts or tokens?)"
            )
        # Code len(table) = "no word" (special tokens, whitespace; no previous / next word): a blank row.
        wtable = np.concatenate([np.asarray(words.table, dtype=bool), np.zeros((1, len(words.names)), dtype=bool)])
        columns += [w, wp, wn]
        tables += [wtable, wtable, wtable]
        names += [*words.names, *(f"prev:{x}" for x in words.names), *(f"next:{x}" for x in words.names)]
    codes = torch.stack(columns, 1)
    return ConceptSet.from_ids(codes, [torch.from_numpy(t_) for t_ in tables], names)


FAMILIES = (
    "part of speech", "dependency", "entity", "morphology", "WordNet category", "lexical", "token identity",
    "position", "previous token/word", "next token/word",
)  # fmt: skip


def concept_family(name: str) -> str:
    """The family of a token concept's name, for summaries (one of FAMILIES): `next:` and `prev:` concepts are
    the next / previous token's (the tokenizer's families) or word's (the linguistic ones), whatever they
    say of it.

    Example:
        >>> concept_family("upos=NOUN"), concept_family("next:tok=␣the"), concept_family("capitalized")
        ('part of speech', 'next token/word', 'lexical')
    """
    if name.startswith("next:"):
        return "next token/word"
    if name.startswith("prev:"):
        return "previous token/word"
    head = name.split("=", 1)[0]
    return {
        "upos": "part of speech",
        "dep": "dependency",
        "ent": "entity",
        "wn": "WordNet category",
        "tok": "token identity",
        "pos": "position",
        **dict.fromkeys(("Number", "Tense", "VerbForm", "Person"), "morphology"),
    }.get(head if "=" in name else "", "lexical")
