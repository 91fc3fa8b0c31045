"""Concepts of labelled image data sets: the classes, their unions (hand-made for MNIST's digits,
WordNet hypernyms for Fashion-MNIST's classes) and concepts found in the pixels (concepts.derived).

Example:
    >>> cs = mnist_concepts(images, labels)   # images [N, 28, 28] uint8, labels [N] digits
    >>> cs.names[:2]
    ('digit 0', 'digit 1')
"""

from __future__ import annotations

import numpy as np

from ..core.concepts import ConceptSet
from .derived import enclosed_regions, pixel_concepts
from .wordnet import hypernym_unions

DIGIT_UNIONS = {
    "loop digit": [0, 6, 8, 9],
    "straight strokes only": [1, 4, 7],
    "curved strokes": [0, 2, 3, 5, 6, 8, 9],
    "even digit": [0, 2, 4, 6, 8],
    "digit >= 5": [5, 6, 7, 8, 9],
}

# Fashion-MNIST class -> (WordNet lemma, sense): the noun synset each class is.
FASHION_SYNSETS = {
    "T-shirt/top": ("t-shirt", 1),
    "Trouser": ("trouser", 1),
    "Pullover": ("pullover", 1),
    "Dress": ("dress", 1),
    "Coat": ("coat", 1),
    "Sandal": ("sandal", 1),
    "Shirt": ("shirt", 1),
    "Sneaker": ("sneaker", 1),
    "Bag": ("bag", 1),
    "Ankle boot": ("boot", 1),
}


def mnist_concepts(images: np.ndarray, labels: np.ndarray) -> ConceptSet:
    """Digit classes, their unions and ink-area concepts for MNIST images [N, 28, 28]."""
    names = [f"digit {i}" for i in range(10)]
    cs = ConceptSet.from_classes(labels, names, descriptions=[f"handwritten {i}" for i in range(10)])
    cs = cs.with_unions(
        {name: [f"digit {i}" for i in members] for name, members in DIGIT_UNIONS.items()},
        descriptions={name: "digits " + ", ".join(map(str, m)) for name, m in DIGIT_UNIONS.items()},
    )
    ink = (images > 127).reshape(len(images), -1).sum(1)
    lo, hi = np.quantile(ink, [0.25, 0.75])
    derived = ConceptSet(
        np.stack([ink >= hi, ink <= lo, enclosed_regions(images)], 1),
        names=["much ink", "little ink", "closed loop"],
        descriptions=[
            f"top quarter of ink area (>= {hi:.0f} pixels)",
            f"bottom quarter of ink area (<= {lo:.0f} pixels)",
            "the ink encloses background (a loop), found by flooding the background from the border",
        ],
    )
    return cs.concat(derived)


def fashion_concepts(images: np.ndarray, labels: np.ndarray, wordnet) -> ConceptSet:
    """The 10 classes (WordNet glosses as descriptions), their WordNet hypernyms, and pixel concepts."""
    names = list(FASHION_SYNSETS)  # in Fashion-MNIST's label order
    synsets = {n: wordnet.lookup(*FASHION_SYNSETS[n]) for n in names}
    desc = [f"{', '.join(synsets[n].words)}: {synsets[n].gloss}" for n in names]
    cs = ConceptSet.from_classes(labels, names, desc)
    unions, udesc = hypernym_unions(wordnet, {n: synsets[n].wnid for n in names})
    cs = cs.with_unions(unions, udesc)
    return cs.concat(pixel_concepts(images))
