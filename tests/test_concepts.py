"""ConceptSet packing, construction, unions, slicing and regions."""

import pytest
import torch

import invert_fast as inv
from invert_fast.core.bits import pack_bits, popcount, unpack_bits

from .helpers import random_labels


@pytest.mark.parametrize("n", [1, 63, 64, 65, 130, 1000])
def test_pack_roundtrip_and_popcount(n):
    m = random_labels(n, 9, density=0.4).t()
    words = pack_bits(m)
    assert words.dtype == torch.int64 and words.shape == (9, (n + 63) // 64)
    assert torch.equal(unpack_bits(words, n), m)
    assert popcount(words).tolist() == m.sum(1).tolist()


def test_bit_order_is_little_endian_by_sample():
    assert pack_bits(torch.tensor([True, False, True])).tolist() == [5]
    m = torch.zeros(64, dtype=torch.bool)
    m[63] = True
    assert pack_bits(m).item() == -(2**63)


def test_from_matrix_and_classes():
    y = random_labels(100, 5)
    cs = inv.ConceptSet(y.numpy().astype("float32"), names=list("abcde"))
    assert torch.equal(cs.dense(), y)
    assert cs.counts.tolist() == y.sum(0).tolist()
    assert cs.names == tuple("abcde") and cs.n_samples == 100
    cls = inv.ConceptSet.from_classes([2, 0, 2, 1], ["x", "y", "z"], descriptions={"z": "zed"})
    assert cls.dense().int().tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert cls.descriptions == ("", "", "zed")
    assert inv.ConceptSet(torch.zeros(3, 2)).names == ("c0", "c1")


def test_unions_slicing_and_devices():
    cs = inv.ConceptSet.from_classes([0, 1, 2, 3, 1], ["cat", "dog", "car", "bus"])
    big = cs.with_unions({"animal": ["cat", "dog"], "vehicle": [2, 3]}, descriptions={"animal": "living"})
    assert big.names[-2:] == ("animal", "vehicle")
    assert big.mask("animal").tolist() == [True, True, False, False, True]
    assert big.counts.tolist() == [1, 2, 1, 1, 3, 2]
    sub = big[["vehicle", 0]]
    assert sub.names == ("vehicle", "cat") and sub.descriptions == ("", "")
    assert big[4:].names == ("animal", "vehicle") and big[4:].descriptions == ("living", "")
    assert big[torch.tensor([True, False, False, False, True, False])].names == ("cat", "animal")
    assert big.to("cpu") is big
    assert torch.equal(inv.ConceptSet.from_bits(big.bits, 5, big.names).dense(), big.dense())


def test_regions_group_samples_by_concept_vector():
    y = torch.tensor([[1, 0], [0, 1], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=torch.bool)
    reg = inv.ConceptSet(y).regions()
    assert reg.num_regions == 4 and not reg.identity
    # samples of one region share the concept vector, different regions differ
    vec = {tuple(y[i].tolist()) for i in range(6)}
    assert len(vec) == 4
    for g in range(4):
        members = reg.sample_indices[reg.sample_indptr[g] : reg.sample_indptr[g + 1]].tolist()
        assert len({tuple(y[i].tolist()) for i in members}) == 1
        assert all(reg.region_of[i] == g for i in members)
    member = reg.membership()
    for k in range(2):
        for g in range(4):
            i = reg.sample_indices[reg.sample_indptr[g]]
            assert member[k, g] == y[i, k]


def test_regions_with_many_concepts_and_identity():
    y = random_labels(300, 140, density=0.5, seed=9)  # > 4 folding rounds of 31 concepts
    reg = inv.ConceptSet(y).regions()
    assert reg.identity and reg.num_regions == 300
    assert torch.equal(reg.region_of, torch.arange(300))
    assert torch.equal(reg.membership().bool(), y.t())


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="names: expected 2 names"):
        inv.ConceptSet(torch.zeros(3, 2), names=["a"])
    with pytest.raises(ValueError, match="names must be unique, got 'a' at positions 0 and 1"):
        inv.ConceptSet(torch.zeros(3, 2), names=["a", "a"])
    with pytest.raises(ValueError, match=r"names\[1\]: expected a non-empty name"):
        inv.ConceptSet(torch.zeros(3, 2), names=["a", " b"])
    with pytest.raises(ValueError, match=r"y: class indices must lie in \[0, 2\)"):
        inv.ConceptSet.from_classes([0, 2], ["a", "b"])
    with pytest.raises(TypeError, match="y: expected integer class indices"):
        inv.ConceptSet.from_classes([0.5, 1.0], ["a", "b"])
    cs = inv.ConceptSet.from_classes([0, 1], ["a", "b"])
    with pytest.raises(KeyError, match="concept 'zz' is not in this ConceptSet"):
        cs.with_unions({"u": ["a", "zz"]})
    with pytest.raises(ValueError, match="names must be unique"):
        cs.with_unions({"a": ["b"]})
    with pytest.raises(ValueError, match="needs at least one member"):
        cs.with_unions({"u": []})
    with pytest.raises(ValueError, match="padding bits"):
        inv.ConceptSet.from_bits(torch.tensor([[8]]), 3, ["a"])


def test_concept_files_and_derived(tmp_path):
    import json

    import numpy as np

    from invert_fast.concepts.derived import pixel_concepts

    (tmp_path / "c.csv").write_text("sample,red,round\n0,1,0\n1,0,1\n2,1,1\n")
    cs = inv.ConceptSet.from_csv(tmp_path / "c.csv")
    assert cs.names == ("red", "round") and cs.dense().int().tolist() == [[1, 0], [0, 1], [1, 1]]
    (tmp_path / "bad.csv").write_text("red,round\n0,1\n2,0\n")
    with pytest.raises(ValueError, match="labels: expected only 0 and 1"):
        inv.ConceptSet.from_csv(tmp_path / "bad.csv")
    spec = {"n_samples": 4, "concepts": {"cat": [0, 3], "dog": {"samples": [1], "description": "a canine"}}}
    (tmp_path / "c.json").write_text(json.dumps(spec))
    js = inv.ConceptSet.from_json(tmp_path / "c.json")
    assert js.mask("cat").tolist() == [True, False, False, True] and js.descriptions == ("", "a canine")
    both = cs.concat(inv.ConceptSet(torch.tensor([[1], [1], [0]]), ["big"]))
    assert both.names == ("red", "round", "big") and both.counts.tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="over 3 samples, got 4"):
        cs.concat(js)
    img = np.zeros((8, 10, 10), dtype=np.uint8)
    for i in range(8):
        img[i, : i + 2, : 2 * i % 9 + 1] = 200 + i
    pc = pixel_concepts(img)
    # object areas are 2, 9, 20, 35, 54, 14, 32, 54: the top quarter (>= 39.75) is samples 4 and 7
    assert pc.names[0] == "large object" and pc.mask("large object").tolist() == [False] * 4 + [
        True,
        False,
        False,
        True,
    ]
    assert all(d for d in pc.descriptions)


def test_enclosed_regions_find_loops():
    import numpy as np

    from invert_fast.concepts.derived import enclosed_regions

    img = np.zeros((3, 9, 9), dtype=np.uint8)
    img[0, 2:7, 2] = img[0, 2:7, 6] = img[0, 2, 2:7] = img[0, 6, 2:7] = 255  # a ring: closed
    img[1, 2:7, 4] = 255  # a line: open
    img[2, 2:7, 2] = img[2, 2:7, 6] = img[2, 6, 2:7] = 255  # a cup: open at the top
    assert enclosed_regions(img).tolist() == [True, False, False]


def test_fashion_synsets_follow_the_data_sets_label_order():
    from invert_fast.cases import zoo
    from invert_fast.concepts.classes import FASHION_SYNSETS

    assert tuple(FASHION_SYNSETS) == zoo.FASHION_MNIST_CLASSES  # labels index the class names by position
