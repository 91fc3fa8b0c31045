"""Word-level concepts and a real sentence corpus for labeling language-model neurons token by token.

- Corpus: the example sentences of WordNet 3.0's glosses (the quoted parts, e.g. "the dog barked all
  night"), from Debian's wordnet-base: real English written by lexicographers, no download.
- Concepts of a token (every word piece gets its word's concepts):
  * part of speech: the word's lemma is a WordNet noun / verb / adjective / adverb (morphology by
    WordNet's exception lists and suffix rules, as its `morphy`);
  * semantic class: the first (most frequent) noun sense lies under animal, person, food, plant,
    artifact, body part, location, time period, feeling, communication or act in the hypernym tree;
  * sentiment: VADER's lexicon (PyPI vaderSentiment) mean valence >= 1 (positive) or <= -1 (negative);
  * emotion: the NRC emotion lexicon (PyPI nrclex): anger, anticipation, disgust, fear, joy, sadness,
    surprise, trust;
  * surface: a word-piece continuation (##...), punctuation, a number.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..core.concepts import ConceptSet
from ..files import package_file
from .wordnet import WORDNET_DIR, WordNet

# (name, WordNet lemma, senses): noun classes that cover many everyday words.
SEMANTIC_CLASSES = (
    ("animal", "animal", (1,)),
    ("person", "person", (1,)),
    ("food", "food", (1, 2)),  # nutrient, and solid food (fruit, bread, ...)
    ("plant", "plant", (2,)),
    ("artifact", "artifact", (1,)),
    ("body part", "body part", (1,)),
    ("location", "location", (1,)),
    ("time period", "time period", (1,)),
    ("feeling", "feeling", (1,)),
    ("communication", "communication", (2,)),
    ("act", "act", (2,)),
)
EMOTIONS = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")
_POS_FILES = {"noun": "noun", "verb": "verb", "adjective": "adj", "adverb": "adv"}
# WordNet's morphy suffix rules per part of speech.
_SUFFIXES = {
    "noun": (
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "adjective": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "adverb": (),
}


def _glosses(root: Path | None):
    """Every gloss of WordNet 3.0's data files (all parts of speech), in file order."""
    root = Path(root) if root is not None else WORDNET_DIR
    for pos in ("noun", "verb", "adj", "adv"):
        path = root / f"data.{pos}"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; install WordNet with: apt-get install wordnet-base")
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.startswith("  "):  # the license header is indented
                    yield line.partition(" | ")[2]


def wordnet_sentences(root: Path | None = None) -> list[str]:
    """The example sentences quoted in WordNet 3.0's glosses (all parts of speech), deduplicated, in file order."""
    seen: dict[str, None] = {}
    for gloss in _glosses(root):
        for s in re.findall(r'"([^"]+)"', gloss):
            s = s.strip()
            if len(s.split()) >= 4:
                seen.setdefault(s, None)
    return list(seen)


def wordnet_glosses(root: Path | None = None) -> list[str]:
    """The definitions of WordNet 3.0's glosses (all parts of speech; the quoted example sentences taken
    out, see wordnet_sentences), deduplicated, in file order: 116,707 texts, 1.17 million words.

    Example:
        >>> wordnet_glosses()[1]
        'an entity that has physical existence'
    """
    seen: dict[str, None] = {}
    for gloss in _glosses(root):
        text = re.sub(r"[;\s]+$", "", re.sub(r'"[^"]*"', "", gloss).strip())
        if text:
            seen.setdefault(text, None)
    return list(seen)


class Lexicon:
    """Word -> concept names, from WordNet, VADER and NRC."""

    def __init__(self, wordnet: WordNet | None = None, root: Path | None = None):
        root = Path(root) if root is not None else WORDNET_DIR
        self.wordnet = wordnet or WordNet.load(root)
        self.lemmas = {pos: _index_lemmas(root / f"index.{f}") for pos, f in _POS_FILES.items()}
        self.exceptions = {pos: _exceptions(root / f"{f}.exc") for pos, f in _POS_FILES.items()}
        self.classes = {
            name: {self.wordnet.lookup(lemma, k).offset for k in senses} for name, lemma, senses in SEMANTIC_CLASSES
        }
        self.valence = _vader()
        self.emotions = _nrc()
        self._cache: dict[str, frozenset[str]] = {}

    def lemma(self, word: str, pos: str) -> str | None:
        """WordNet's base form of `word` as part of speech `pos`, or None if it is not one."""
        base = self.exceptions[pos].get(word)
        if base is not None and base in self.lemmas[pos]:  # (noun.exc also lists bases WordNet lacks, e.g. "is")
            return base
        if word in self.lemmas[pos]:
            return word
        for suffix, repl in _SUFFIXES[pos]:
            if word.endswith(suffix) and len(word) > len(suffix):
                base = word[: -len(suffix)] + repl
                if base in self.lemmas[pos]:
                    return base
        return None

    def concepts(self, word: str) -> frozenset[str]:
        """The concept names of one lowercase word."""
        if word in self._cache:
            return self._cache[word]
        out = set()
        if re.fullmatch(r"\W", word):
            out.add("punctuation")
        elif re.fullmatch(r"\d+", word):
            out.add("number")
        else:
            for pos in _POS_FILES:
                if self.lemma(word, pos) is not None:
                    out.add(pos)
            noun = self.lemma(word, "noun")
            if noun is not None:
                first = self.wordnet.lookup(noun, 1).offset
                above = self.wordnet.ancestors(first) | {first}
                out.update(name for name, offs in self.classes.items() if offs & above)
            v = self.valence.get(word)
            if v is not None and v >= 1:
                out.add("positive word")
            elif v is not None and v <= -1:
                out.add("negative word")
            out.update(e for e in self.emotions.get(word, ()) if e in EMOTIONS)
        self._cache[word] = frozenset(out)
        return self._cache[word]

    def names(self) -> list[str]:
        """Every concept name, in a fixed order."""
        return [
            *_POS_FILES,
            *(n for n, _, _ in SEMANTIC_CLASSES),
            "positive word",
            "negative word",
            *EMOTIONS,
            "continuation piece",
            "punctuation",
            "number",
        ]

    def descriptions(self) -> dict[str, str]:
        d = {pos: f"the word is a WordNet 3.0 {pos} (after morphology)" for pos in _POS_FILES}
        for name, lemma, senses in SEMANTIC_CLASSES:
            d[name] = (
                f"the word's first noun sense lies under {lemma} (sense {'/'.join(map(str, senses))}) in WordNet's hypernym tree"
            )
        d["positive word"] = "VADER lexicon mean valence >= 1"
        d["negative word"] = "VADER lexicon mean valence <= -1"
        d.update({e: f"NRC emotion lexicon: {e}" for e in EMOTIONS})
        d["continuation piece"] = "a word piece inside a word (##...)"
        d["punctuation"] = "a punctuation mark"
        d["number"] = "digits"
        return d


def token_concepts(lexicon: Lexicon, tokens: list[tuple[str, bool]]) -> ConceptSet:
    """ConceptSet over tokens given as (word, is continuation piece)."""
    names = lexicon.names()
    col = {n: i for i, n in enumerate(names)}
    labels = np.zeros((len(tokens), len(names)), dtype=bool)
    for i, (word, cont) in enumerate(tokens):
        for c in lexicon.concepts(word):
            labels[i, col[c]] = True
        labels[i, col["continuation piece"]] = cont
    return ConceptSet(labels, names, lexicon.descriptions())


def _index_lemmas(path: Path) -> set[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; install WordNet with: apt-get install wordnet-base")
    with open(path, encoding="utf-8") as f:
        return {line.split(" ", 1)[0] for line in f if not line.startswith("  ")}


def _exceptions(path: Path) -> dict[str, str]:
    out = {}
    if path.is_file():
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    out.setdefault(parts[0], parts[1])
    return out


def _vader() -> dict[str, float]:
    path = package_file("vaderSentiment", "vader_lexicon.txt", "pip install --no-deps vaderSentiment")
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2:
                out[parts[0]] = float(parts[1])
    return out


def _nrc() -> dict[str, list[str]]:
    path = package_file("nrclex", "data/nrc_en.json", "pip install --no-deps nrclex")
    return json.loads(path.read_text(encoding="utf-8"))
