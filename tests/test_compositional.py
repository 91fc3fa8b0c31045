"""Compositional explanations (Mu & Andreas) against the plain-Python reference and a brute force."""

from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.core.bits import unpack_bits
from invert_fast.core.formula import Formula
from invert_fast.dissection.netdissect import unit_words
from invert_fast.reference import compositional_reference, iou_counts_reference


def as_int(words: torch.Tensor, n_pixels: int) -> int:
    """[N, W] packed masks -> one Python int over all N * n_pixels pixels (image after image)."""
    bits = unpack_bits(words, n_pixels).flatten().tolist()
    return sum(1 << i for i, b in enumerate(bits) if b)


def problem(seed, n=25, d=5, h=4, w=4, size=8, k=6, levels=4):
    rng = np.random.default_rng(seed)
    maps = (rng.integers(0, levels, (n, d, h, w)) / 2).astype(np.float32)
    dens = rng.uniform(0.05, 0.6, k)
    masks = rng.random((n, k, size, size)) < dens[None, :, None, None]
    masks[0, :, 0, 0], masks[0, :, -1, -1] = True, False
    return maps, inv.PixelMasks(masks, [f"c{i}" for i in range(k)])


def reference_for(maps, pm, quantile, length, beam, penalty=0.0):
    th = inv.quantile_thresholds(maps, quantile)
    u = unit_words(torch.from_numpy(maps), th, pm.height, pm.width)
    units = [as_int(u[:, j], pm.n_pixels) for j in range(u.shape[1])]
    concepts = [as_int(pm.words[:, k], pm.n_pixels) for k in range(len(pm))]
    return compositional_reference(units, concepts, pm.names, pm.n_images * pm.n_pixels, length, beam, penalty), units


@pytest.mark.parametrize("seed", range(6))
# Penalties: 0.25 makes exact ties between lengths (3/4 - 1/4 = 1/2), decided by length then text; 1/3 and
# 0.01 are not exact in binary, so penalized floats round twice and only the exact comparison orders them.
@pytest.mark.parametrize(
    "length,beam,penalty",
    [(1, 3, 0.0), (2, 4, 0.0), (3, 5, 0.0), (3, 2, 0.01), (4, 3, 0.002), (3, 4, 0.25), (3, 3, 1 / 3), (2, 6, 0.05)],
)
def test_matches_reference(seed, length, beam, penalty):
    maps, pm = problem(seed)
    want, _ = reference_for(maps, pm, 0.2, length, beam, penalty)
    got = inv.compositional_explain(maps, pm, length=length, beam=beam, length_penalty=penalty, quantile=0.2)
    assert [[(str(x.formula), x.intersection, x.union) for x in unit] for unit in got] == want


@pytest.mark.parametrize("seed", range(3))
def test_netdissect_lite_thresholds_at_the_originals_level(seed):
    """compat="netdissect-lite": the units' masks at NetDissect-Lite's quantile level (column
    int(1000 (1 - q) - 1) of 1,000 levels i / 999), here from numpy directly; the search is unchanged."""
    rng = np.random.default_rng(seed)
    maps = rng.standard_normal((25, 5, 4, 4)).astype(np.float32)
    _, pm = problem(seed)
    q = 0.2
    level = int(1000 * (1 - q) - 1) / 999
    th = torch.from_numpy(np.array([np.quantile(maps[:, d].ravel(), level) for d in range(5)], dtype=np.float32))
    want = inv.compositional_explain(maps, pm, length=3, beam=3, thresholds=th)
    got = inv.compositional_explain(maps, pm, length=3, beam=3, quantile=q, compat="netdissect-lite")
    assert [[(str(x.formula), x.intersection, x.union) for x in u] for u in got] == [
        [(str(x.formula), x.intersection, x.union) for x in u] for u in want
    ]
    assert not torch.equal(th, inv.quantile_thresholds(maps, q))  # not the plain level 1 - q


def test_units_in_chunks_and_counts_are_the_formula_masks():
    maps, pm = problem(7, d=9)
    whole = inv.compositional_explain(maps, pm, length=3, beam=3, quantile=0.1)
    chunked = inv.compositional_explain(maps, pm, length=3, beam=3, quantile=0.1, max_memory=1)  # 1 unit at a time
    assert [[(str(x.formula), x.intersection, x.union) for x in u] for u in whole] == [
        [(str(x.formula), x.intersection, x.union) for x in u] for u in chunked
    ]
    _, units = reference_for(maps, pm, 0.1, 1, 1)
    for j, unit in enumerate(whole):
        for lab in unit:
            f_mask = as_int(pm.formula_words(lab.formula), pm.n_pixels)
            assert (lab.intersection, lab.union) == iou_counts_reference(units[j], f_mask)


def test_exhaustive_beam_finds_the_brute_force_best():
    """With a beam as large as the concept list, length 2 search sees every formula of length <= 2."""
    maps, pm = problem(11, k=5)
    _, units = reference_for(maps, pm, 0.15, 1, 1)
    full = (1 << pm.n_images * pm.n_pixels) - 1
    atoms = {Formula.atom(s): as_int(pm.words[:, i], pm.n_pixels) for i, s in enumerate(pm.names)}
    every = dict(atoms)
    for (fa, ma), (fb, mb) in ((x, y) for x in atoms.items() for y in atoms.items() if x[0] != y[0]):
        every[fa | fb], every[fa & fb], every[fa & ~fb] = ma | mb, ma & mb, ma & (full & ~mb)
    got = inv.compositional_explain(maps, pm, length=2, beam=len(pm), quantile=0.15)
    for j, unit in enumerate(units):

        def key(item, unit=unit):
            i, u = iou_counts_reference(unit, item[1])
            return (-(Fraction(i, u) if u else 0), item[0].length, str(item[0]))

        best = min(every.items(), key=key)[0]
        assert str(got[j][0].formula) == str(best)
    assert len(list(combinations(pm.names, 2))) * 4 + len(pm) == len(every)


def test_errors():
    maps, pm = problem(0)
    with pytest.raises(ValueError, match="length: expected an integer >= 1, got 0"):
        inv.compositional_explain(maps, pm, length=0)
    with pytest.raises(ValueError, match="beam: expected an integer >= 1, got 2.5"):
        inv.compositional_explain(maps, pm, beam=2.5)
    with pytest.raises(ValueError, match="length_penalty: expected a number >= 0, got -0.1"):
        inv.compositional_explain(maps, pm, length_penalty=-0.1)
    with pytest.raises(ValueError, match="need pixel masks, got 1 x 1 image-level labels"):
        inv.compositional_explain(maps, inv.PixelMasks(np.eye(25, 2), ["a", "b"]))
    with pytest.raises(ValueError, match=r"compat: expected one of \('invert_fast', 'netdissect-lite'\), got 'lite'"):
        inv.compositional_explain(maps, pm, compat="lite")
    with pytest.raises(ValueError, match="masks of the 24 images of maps, got 25 images"):
        inv.compositional_explain(maps[:24], pm)
