"""Network Dissection: the kernels and the whole pipeline against a straightforward implementation
(np.quantile thresholds, F.interpolate, bool masks, integer sums) written out here."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import invert_fast as inv
from invert_fast.concepts import derived
from invert_fast.core.bits import pack_bits, unpack_bits
from invert_fast.dissection.netdissect import unit_words
from invert_fast.ops import top_values, upsample_threshold


def bilinear(maps: np.ndarray, hh: int, ww: int) -> np.ndarray:
    """Bilinear upsampling with align_corners=False, written out: source coordinate
    (dst + 0.5) * in / out - 0.5 clamped at 0, weights as exact fractions over 2 * out, sums in float64.
    (Exact for the tie-heavy test data, whose values are multiples of 1/4.)"""

    def taps(n_in, n_out):
        num = np.maximum((2 * np.arange(n_out) + 1) * n_in - n_out, 0)
        i0 = np.minimum(num // (2 * n_out), n_in - 1)
        r = np.where(i0 >= n_in - 1, 0, num - i0 * 2 * n_out)
        return i0, np.minimum(i0 + 1, n_in - 1), r / (2 * n_out)

    y0, y1, ly = taps(maps.shape[2], hh)
    x0, x1, lx = taps(maps.shape[3], ww)
    m = maps.astype(np.float64)
    top = m[:, :, y0][:, :, :, x0] * (1 - lx) + m[:, :, y0][:, :, :, x1] * lx
    bottom = m[:, :, y1][:, :, :, x0] * (1 - lx) + m[:, :, y1][:, :, :, x1] * lx
    return top * (1 - ly)[:, None] + bottom * ly[:, None]


def straightforward(maps: np.ndarray, masks: np.ndarray, quantile: float):
    """thresholds [D], intersection [D, K], union [D, K] exactly as the method defines them."""
    n, d = maps.shape[:2]
    k, hh, ww = masks.shape[1:]
    th = np.array([np.quantile(maps[:, u].ravel(), 1 - quantile) for u in range(d)], dtype=maps.dtype)
    unit = bilinear(maps, hh, ww) > th[None, :, None, None]  # [N, D, H, W]
    inter = np.zeros((d, k), dtype=np.int64)
    union = np.zeros((d, k), dtype=np.int64)
    for u in range(d):
        for c in range(k):
            inter[u, c] = np.logical_and(unit[:, u], masks[:, c]).sum()
            union[u, c] = np.logical_or(unit[:, u], masks[:, c]).sum()
    return th, inter, union


def best_label(inter, union, names, cols):
    """Highest IoU among cols, exact, ties to the first name in text order; -1 where no concept overlaps."""
    from fractions import Fraction

    c = min(cols, key=lambda c: (-(Fraction(int(inter[c]), int(union[c])) if union[c] else 0), names[c]))
    return c if inter[c] > 0 else -1


def random_problem(n, d, h, w, hh, ww, k, seed, levels=None, dtype=np.float32):
    rng = np.random.default_rng(seed)
    if levels:  # heavy ties: thresholds fall on data values, bilinear values on thresholds
        maps = (rng.integers(0, levels, (n, d, h, w)) / 4).astype(dtype)
    else:
        maps = np.maximum(rng.standard_normal((n, d, h, w)), 0).astype(dtype)  # ReLU-like, many zeros
    masks = rng.random((n, k, hh, ww)) < rng.uniform(0.05, 0.5, (1, k, 1, 1))
    masks[0, :, 0, 0], masks[0, :, -1, -1] = True, False  # never empty, never full
    return maps, masks


def test_and_popcount_matches_bool_counts():
    g = torch.Generator().manual_seed(0)
    for n, a, k, bits in [(1, 1, 1, 1), (7, 5, 3, 64), (13, 20, 9, 129), (3, 33, 17, 784)]:
        x = torch.rand(n, a, bits, generator=g) < 0.4
        y = torch.rand(n, k, bits, generator=g) < 0.3
        want = (x[:, :, None, :] & y[:, None, :, :]).sum((0, 3))
        assert torch.equal(inv.and_popcount(pack_bits(x), pack_bits(y)), want)
    big = torch.full((2, 3, 4), -1, dtype=torch.int64)
    assert torch.equal(inv.and_popcount(big, big[:, :2]), torch.full((3, 2), 2 * 4 * 64))
    wide = pack_bits(torch.rand(4, 6, 300, generator=g) < 0.5)
    assert torch.equal(inv.and_popcount(wide[:, ::2], wide), inv.and_popcount(wide[:, ::2].contiguous(), wide))


def test_and_popcount_empty_and_errors():
    z = torch.zeros(0, 3, 2, dtype=torch.int64)
    assert torch.equal(
        inv.and_popcount(z, torch.zeros(0, 4, 2, dtype=torch.int64)), torch.zeros(3, 4, dtype=torch.int64)
    )
    with pytest.raises(ValueError, match=r"same images N and words W, got shapes \[2, 3, 4\] and \[2, 3, 5\]"):
        inv.and_popcount(torch.zeros(2, 3, 4, dtype=torch.int64), torch.zeros(2, 3, 5, dtype=torch.int64))
    with pytest.raises(TypeError, match="int64 packed words, got Int"):
        inv.and_popcount(torch.zeros(2, 3, 4, dtype=torch.int32), torch.zeros(2, 3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"a must be \[N, A, W\]"):
        inv.and_popcount(torch.zeros(3, 4, dtype=torch.int64), torch.zeros(2, 3, 4, dtype=torch.int64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "h,w,hh,ww", [(14, 14, 28, 28), (5, 5, 28, 28), (7, 3, 16, 9), (3, 4, 3, 4), (10, 10, 4, 6), (1, 1, 5, 5)]
)
def test_unit_words_equal_exact_bilinear(dtype, h, w, hh, ww):
    for seed, levels in [(0, None), (1, 5), (2, 2)]:
        maps, _ = random_problem(6, 9, h, w, 1, 1, 1, seed, levels)
        x = torch.from_numpy(maps).to(dtype)
        th = inv.quantile_thresholds(x, 0.1)
        th[2] = -0.5  # negative threshold: zero sources count
        want = pack_bits(
            torch.from_numpy(bilinear(x.numpy(), hh, ww) > th.numpy()[None, :, None, None]).reshape(6, 9, -1)
        )
        assert torch.equal(unit_words(x, th, hh, ww), want)
        if levels is None:  # no ties: torch's F.interpolate gives the same masks
            up = F.interpolate(x, size=(hh, ww), mode="bilinear", align_corners=False)
            assert torch.equal(unit_words(x, th, hh, ww), pack_bits((up > th[None, :, None, None]).reshape(6, 9, -1)))


def test_upsample_threshold_exact_at_ties_and_infinities():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    words, nan = upsample_threshold(x, torch.tensor([2.5]), 3, 3)  # centre pixel is exactly 2.5: not above
    assert unpack_bits(words, 9).reshape(3, 3).tolist() == [
        [False, False, False],
        [False, False, True],
        [True, True, True],
    ]
    assert nan.tolist() == [[False]]
    # 0.1 is not a binary fraction: (0.1 + 0.1 + 0.1 + 0.1) / 4 in float rounds, the exact mean does not.
    tenth = torch.full((1, 1, 2, 2), 0.1, dtype=torch.float64)
    assert upsample_threshold(tenth, torch.tensor([0.1], dtype=torch.float64), 3, 3)[0].tolist() == [[[0]]]
    inf = torch.tensor([[[[float("inf"), 0.0], [0.0, 0.0]]]])
    words, _ = upsample_threshold(inf, torch.tensor([1.0]), 4, 4)
    near = [[True] * 3 + [False]] * 3 + [[False] * 4]  # every pixel with some weight on the infinite source
    assert unpack_bits(words, 16).reshape(4, 4).tolist() == near
    assert upsample_threshold(torch.tensor([[[[float("nan")]]]]), torch.zeros(1), 2, 2)[1].tolist() == [[True]]
    with pytest.raises(TypeError, match="thresholds must have the maps' dtype Float, got Double"):
        upsample_threshold(x, torch.tensor([1.0], dtype=torch.float64), 3, 3)
    with pytest.raises(ValueError, match=r"H and W must be in \[1, 16384\], got 0 x 3"):
        upsample_threshold(x, torch.tensor([1.0]), 0, 3)


def test_top_values_streaming_equals_topk():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 7, (40, 5, 3, 3), generator=g).float()
    for keep in [1, 3, 17, 200, 360, 500]:
        top = torch.zeros(5, 0)
        for s in range(0, 40, 7):
            top, nan = top_values(x[s : s + 7], top, keep)
            assert (nan == -1).all()
        want = torch.topk(x.transpose(0, 1).reshape(5, -1), min(keep, 360), dim=1).values
        assert torch.equal(top, want)
    x[3, 2, 1, 1] = float("nan")
    assert top_values(x, torch.zeros(5, 0), 4)[1].tolist() == [-1, -1, 3, -1, -1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thresholds_equal_numpy_quantile(dtype):
    for seed, shape, levels in [(0, (50, 3, 7, 7), 9), (1, (13, 4, 1, 1), 3), (2, (200, 5, 3, 5), None)]:
        maps, _ = random_problem(*shape, 1, 1, 1, seed, levels, dtype)
        maps[maps > 2.2] = np.inf
        for q in [0.005, 0.2, 0.5, 0.9, 0.999]:
            for mem in [100, 10**9]:  # streamed in tiny chunks or in one piece
                got = inv.quantile_thresholds(maps, q, max_memory=mem).numpy()
                with np.errstate(invalid="ignore"):
                    want = np.array([np.quantile(maps[:, d].ravel(), 1 - q) for d in range(shape[1])], dtype=dtype)
                assert got.dtype == dtype and np.array_equal(got, want, equal_nan=True)


@pytest.mark.parametrize(
    "shape,levels",
    [
        ((40, 6, 7, 7, 14, 14, 5), None),
        ((30, 4, 5, 5, 28, 28, 3), 6),
        ((25, 3, 4, 6, 9, 11, 4), 2),
        ((20, 5, 6, 6, 6, 6, 3), 4),
    ],
)
def test_network_dissection_equals_straightforward(shape, levels):
    maps, masks = random_problem(*shape, seed=sum(shape), levels=levels)
    names = [f"c{i}" for i in range(shape[-1])]
    cats = ["odd" if i % 2 else "even" for i in range(shape[-1])]
    pm = inv.PixelMasks(masks, names, categories=cats)
    th, inter, union = straightforward(maps, masks, 0.05)
    for mem in [2_000, 2**28]:
        diss = inv.network_dissection(maps, pm, 0.05, max_memory=mem)
        assert np.array_equal(diss.thresholds.numpy(), th)
        assert np.array_equal(diss.intersection.numpy(), inter) and np.array_equal(diss.union.numpy(), union)
    rows = diss.records()
    for d, row in enumerate(rows):
        c = best_label(inter[d], union[d], names, range(len(names)))
        iou = inter[d, c] / union[d, c] if c >= 0 else 0.0
        assert row["label"] == (names[c] if c >= 0 else "") and row["iou"] == iou
        assert row["detector"] == (iou > 0.04) and row["unit_pixels"] == diss.unit_pixels[d]
        for cat in ("odd", "even"):
            cols = [i for i in range(len(names)) if cats[i] == cat]
            k = best_label(inter[d], union[d], names, cols)
            assert row[f"label_{cat}"] == (names[k] if k >= 0 else "")
    assert any(r["label"] == "" for r in rows) or all(r["unit_pixels"] > 0 for r in rows)


def test_image_level_labels_are_whole_image_masks():
    maps, masks = random_problem(30, 4, 5, 5, 1, 1, 3, seed=3, levels=5)
    labels = masks[:, :, 0, 0]
    pm = inv.PixelMasks(labels.astype(np.uint8), ["a", "b", "c"])
    diss = inv.network_dissection(maps, pm, 0.1)
    full = np.broadcast_to(labels[:, :, None, None], (30, 3, 5, 5))
    th, inter, union = straightforward(maps, full, 0.1)
    assert np.array_equal(diss.intersection.numpy(), inter) and np.array_equal(diss.union.numpy(), union)
    assert np.array_equal(diss.thresholds.numpy(), th)
    pooled = inv.network_dissection(maps.mean((2, 3)), pm, 0.1)  # [N, D] activations: the 1 x 1 case
    th1, inter1, union1 = straightforward(maps.mean((2, 3))[:, :, None, None], labels[:, :, None, None], 0.1)
    assert np.array_equal(pooled.intersection.numpy(), inter1) and np.array_equal(pooled.union.numpy(), union1)


def test_network_dissection_errors():
    maps, masks = random_problem(10, 2, 3, 3, 6, 6, 2, seed=0)
    pm = inv.PixelMasks(masks, ["a", "b"])
    bad = maps.copy()
    bad[4, 1, 2, 2] = np.nan
    with pytest.raises(ValueError, match="no NaN activations, got NaN at image 4, unit 1"):
        inv.network_dissection(bad, pm)
    with pytest.raises(ValueError, match="no NaN activations, got NaN at image 4, unit 1"):
        inv.network_dissection(bad, pm, thresholds=np.zeros(2, np.float32), max_memory=100)
    with pytest.raises(ValueError, match="masks of the 9 images of maps, got 10 images"):
        inv.network_dissection(maps[:9], pm)
    with pytest.raises(ValueError, match=r"quantile: expected a number in \(0, 1\), got 1.5"):
        inv.network_dissection(maps, pm, 1.5)
    with pytest.raises(ValueError, match=r"iou_threshold: expected a number in \[0, 1\), got -1"):
        inv.network_dissection(maps, pm, iou_threshold=-1)
    with pytest.raises(ValueError, match=r"thresholds: expected \[2\] \(one per unit\), got shape \(3,\)"):
        inv.network_dissection(maps, pm, thresholds=np.zeros(3))
    with pytest.raises(ValueError, match=r"maps: expected \[N, D, h, w\]"):
        inv.network_dissection(maps[0], pm)
    plain = inv.network_dissection(maps, masks)  # plain [N, K, H, W] arrays work too (names c0, c1, ...)
    assert torch.equal(plain.intersection, inv.network_dissection(maps, pm).intersection) and plain.names == (
        "c0",
        "c1",
    )
    with pytest.raises(
        TypeError, match=r"masks: expected a PixelMasks or an \[N, K, H, W\] 0/1 tensor or array, got list"
    ):
        inv.network_dissection(maps, [[1]])
    with pytest.raises(TypeError, match="floating-point activations, got torch.int64"):
        inv.network_dissection(torch.ones(10, 2, 3, 3, dtype=torch.int64), pm)


def test_pixel_masks_checks_and_round_trips(tmp_path):
    m = np.zeros((3, 2, 4, 5), dtype=bool)
    m[0, 0, 1, 2] = m[1, 1, 3, 4] = True
    pm = inv.PixelMasks(m, ["a", "b"], {"a": "first"}, ["x", "y"])
    assert torch.equal(pm.to_bool(), torch.from_numpy(m)) and pm.pixels().tolist() == [1, 1]
    assert pm.image_labels().tolist() == [[True, False], [False, True], [False, False]]
    assert torch.equal(
        unpack_bits(pm.formula_words("a | ~b"), 20), torch.from_numpy((m[:, 0] | ~m[:, 1]).reshape(3, -1))
    )
    back = inv.PixelMasks.load(pm.save(tmp_path / "m.npz"))
    assert torch.equal(back.words, pm.words) and back.descriptions == ("first", "") and back.categories == ("x", "y")
    runs = [[[7, 1, 12], [20]], [[20], [20]], [[20], [20]]]
    with pytest.raises(ValueError, match="concept 'b' covers no pixel"):
        inv.PixelMasks.from_rle(runs, 4, 5, ["a", "b"])
    runs[0][1] = [0, 1, 19]
    rle = inv.PixelMasks.from_rle(runs, 4, 5, ["a", "b"])
    assert rle.to_bool()[0, 0].flatten().nonzero().flatten().tolist() == [7]
    with pytest.raises(ValueError, match=r"runs\[0\]\[0\]: expected non-negative run lengths summing to 20"):
        inv.PixelMasks.from_rle([[[7, 1], [20]]], 4, 5, ["a", "b"])
    with pytest.raises(ValueError, match="covers every pixel"):
        inv.PixelMasks(np.ones((2, 1, 2, 2)), ["all"])
    with pytest.raises(ValueError, match="expected 0/1 values, got 2"):
        inv.PixelMasks(np.full((2, 1, 2, 2), 2), ["two"])
    with pytest.raises(ValueError, match="expected 0/1 values, got NaN"):
        inv.PixelMasks(np.full((2, 1, 2, 2), np.nan), ["nan"])
    with pytest.raises(ValueError, match="expected 2 names"):
        inv.PixelMasks(m, ["a"])
    with pytest.raises(ValueError, match="padding bits beyond the last pixel must be 0"):
        inv.PixelMasks.from_words(torch.full((1, 1, 1), -1, dtype=torch.int64), 2, 2, ["a"])


def test_derived_pixel_masks_of_a_ring():
    img = np.zeros((1, 7, 7), dtype=np.uint8)
    img[0, 1:6, 1:6] = 200
    img[0, 2:5, 2:5] = 0  # a square ring around a 3 x 3 hole
    imgs = np.concatenate([img, np.zeros_like(img) + 0, img[:, ::-1]])
    imgs[1, 0, 0] = 255  # a one-pixel object, no hole
    pm = derived.pixel_masks(imgs, np.array([0, 1, 0]), ["ring", "dot"])
    b = pm.to_bool()
    assert b[0, pm.index("hole")].sum() == 9 and b[1, pm.index("hole")].sum() == 0
    assert torch.equal(b[0, pm.index("edge")], b[0, pm.index("object")])  # a 1-pixel-thick ring is all edge
    assert torch.equal(b[:, pm.index("background")], ~b[:, pm.index("object")])
    assert b[0, pm.index("top half"), :3].all() and not b[0, pm.index("top half"), 3:].any()
    assert b[1, pm.index("dot")].sum() == 1 and b[0, pm.index("dot")].sum() == 0
    assert pm.categories[pm.index("ring")] == "class" and pm.categories[pm.index("left half")] == "position"


def _netdissect_lite_reference(maps, masks_bool, categories, quantile, iou_threshold, label_size=None):
    """NetDissect-Lite's definition, written plainly from its description: threshold at the quantile level
    the original reads (column int(1000 (1 - q) - 1) of 1,000 levels i / 999), bilinear upsampling
    (align_corners=False) in float64, per image the unit's pixels count toward category c's union only
    if its mask covers a pixel of some label of c; IoU >= threshold; best label per category, then
    across categories."""
    import torch.nn.functional as F

    n, d = maps.shape[:2]
    if masks_bool.shape[2:] == (1, 1):
        masks_bool = masks_bool.expand(-1, -1, *label_size)
    h, w = masks_bool.shape[2:]
    level = int(1000 * (1 - quantile) - 1) / 999
    t = np.array([np.quantile(maps[:, u].numpy().ravel(), level) for u in range(d)])
    up = F.interpolate(maps.double(), size=(h, w), mode="bilinear", align_corners=False)
    unit = up > torch.from_numpy(t)[None, :, None, None]  # [N, D, H, W]
    cats = list(dict.fromkeys(categories))
    k = masks_bool.shape[1]
    both = np.zeros((d, k), dtype=np.int64)
    units_cat = np.zeros((d, len(cats)), dtype=np.int64)
    for i in range(n):
        b = (unit[i][:, None] & masks_bool[i][None]).sum((2, 3)).numpy()  # [D, K]
        both += b
        for ci, c in enumerate(cats):
            cols = [j for j in range(k) if categories[j] == c]
            units_cat[:, ci] += unit[i].sum((1, 2)).numpy() * (b[:, cols].sum(1) > 0)
    labels = masks_bool.sum((0, 2, 3)).numpy()
    union = units_cat[:, [cats.index(c) for c in categories]] + labels[None] - both
    iou = np.where(union > 0, both / np.maximum(union, 1), 0.0)
    best, score = [], []
    for u in range(d):
        per_cat = []
        for c in cats:
            cols = [j for j in range(k) if categories[j] == c]
            j = cols[int(np.argmax(iou[u, cols]))]
            per_cat.append((iou[u, j], j))
        top = max(v for v, _ in per_cat)
        j = next(j for v, j in per_cat if v == top)
        best.append(j if top > 0 else -1)
        score.append(top)
    return t, both, union, best, [s >= iou_threshold for s in score]


@pytest.mark.parametrize("seed", range(3))
def test_netdissect_lite_compat_matches_the_originals_definition(seed):
    g = torch.Generator().manual_seed(seed)
    n, d, h, w, H, W = 12, 5, 4, 4, 9, 9
    maps = torch.randn(n, d, h, w, generator=g, dtype=torch.float64)
    k = 7
    masks = torch.rand(n, k, H, W, generator=g) < torch.rand(1, k, 1, 1, generator=g) * 0.5
    categories = ["object", "object", "part", "part", "part", "color", "color"]
    masks[: n // 2, 2:5] = False  # "part" is not annotated in half of the images
    pm = inv.PixelMasks(masks, [f"l{j}" for j in range(k)], categories=categories)
    diss = inv.network_dissection(maps, pm, 0.05, compat="netdissect-lite")
    t, both, union, best, det = _netdissect_lite_reference(maps, masks, categories, 0.05, 0.04)
    assert np.array_equal(diss.thresholds.numpy(), t)  # the exact quantile at 994/999-style levels
    assert np.array_equal(diss.intersection.numpy(), both) and np.array_equal(diss.union.numpy(), union)
    assert diss.best()[0] == best
    assert [r["detector"] for r in diss.records()] == det
    plain = inv.network_dissection(maps, pm, 0.05)  # this package's definition differs in the union
    assert not torch.equal(plain.union, diss.union) and not torch.equal(plain.thresholds, diss.thresholds)


def test_netdissect_lite_counts_image_labels_at_label_resolution():
    g = torch.Generator().manual_seed(7)
    maps = torch.randn(10, 3, 3, 3, generator=g, dtype=torch.float64)
    scene = torch.rand(10, 2, generator=g) < 0.5
    pm = inv.PixelMasks(scene, ["indoor", "outdoor"], categories=["scene", "scene"])
    with pytest.raises(ValueError, match="label_size: compat 'netdissect-lite' counts image-level labels"):
        inv.network_dissection(maps, pm, compat="netdissect-lite")
    diss = inv.network_dissection(maps, pm, 0.1, compat="netdissect-lite", label_size=(6, 6))
    t, both, union, best, det = _netdissect_lite_reference(
        maps, scene[:, :, None, None], ["scene"] * 2, 0.1, 0.04, (6, 6)
    )
    assert np.array_equal(diss.intersection.numpy(), both) and np.array_equal(diss.union.numpy(), union)
    assert diss.best()[0] == best
