"""The HTML report: PNG encoding, formulas in words, content, the report command, and rendering in
a real headless Chromium (Debian's chromium; .ci/run installs it)."""

import html
import re
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.apps import report as report_module
from invert_fast.apps.cli import main
from invert_fast.apps.report import (
    LayerReport,
    formula_in_words,
    layer_data,
    png_bytes,
    token_contexts,
    write_report,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def decode_png(data: bytes) -> np.ndarray:
    """Pixels of a PNG whose rows use filter type 0 (what png_bytes writes); other PNGs' pixel values are
    not unfiltered here (Pillow does that)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunks[kind] = chunks.get(kind, b"") + data[pos + 8 : pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])[0] == zlib.crc32(
            kind + data[pos + 8 : pos + 8 + n]
        )
        pos += 12 + n
    w, h, _, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    ch = 1 if color == 0 else 3
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[y * (w * ch + 1) + 1 : (y + 1) * (w * ch + 1)] for y in range(h)]
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(h, w, ch).squeeze()


def test_png_roundtrip():
    g = np.random.default_rng(0)
    gray = g.integers(0, 256, (7, 5), dtype=np.uint8)
    rgb = g.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(png_bytes(gray)), gray)
    assert np.array_equal(decode_png(png_bytes(rgb)), rgb)


def test_formula_in_words():
    f = inv.Formula.parse('sneaker | (sandal & ~"ankle boot")')
    assert formula_in_words(f) == "(sandal and not ankle boot) or sneaker"


@pytest.fixture
def report(tmp_path):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (300,), generator=g)
    cs = inv.ConceptSet.from_classes(y, ["cat", "dog", "ankle boot", "car"], descriptions=["a feline", "", "", ""])
    acts = torch.randn(300, 5, generator=g) + 2 * (y == 2).float().unsqueeze(1)
    images = (np.random.default_rng(0).random((300, 12, 12)) * 255).astype(np.uint8)
    res = inv.explain(acts, cs, L=2, B=3, layer="fc")
    path = write_report(tmp_path / "report.html", [LayerReport(res, acts, cs, images, top=3)], "test report")
    res.to_csv(tmp_path / "labels.csv")
    return path, res


def _visible(page: str) -> str:
    """The page without its script elements (the picker's code and JSON data: text, never parsed as HTML)."""
    return re.sub(r"<script.*?</script>", "", page, flags=re.S)


def test_report_content(report):
    path, res = report
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<script>") == 1  # the picker's, nothing fetched
    assert page.count('<script type="application/json" class="inv-layer"') == 1 and 'id="inv-pick"' in page
    assert page.count('<section class="neuron"') == 3
    assert "ankle boot" in page and "data:image/png;base64," in page and "<svg" in page
    assert "AUC of each neuron" in page and "Most common concepts" in page
    assert str(res[0][0].formula).replace('"', "&quot;") in page


def test_report_marks_labels_not_significant_after_the_search(tmp_path):
    g = torch.Generator().manual_seed(1)
    y = torch.rand(400, 8, generator=g) < 0.2
    acts = torch.randn(400, 6, generator=g)  # noise neurons ...
    acts[:, 0] += 3 * y[:, 2].float()  # ... but one
    res = inv.explain(acts, inv.ConceptSet(y), L=2, B=3, permutations=19, seed=0, layer="fc")
    page = write_report(tmp_path / "r.html", [LayerReport(res, top=6)]).read_text()
    ns = sum(r[0].p_value_search > 0.05 for r in res)
    assert ns >= 3 and 'class="ns">not significant' in page
    assert f"{6 - ns} of 6 best labels are significant" in page and "19 permutations" in page
    plain = write_report(tmp_path / "p.html", [LayerReport(inv.explain(acts, y, L=2, B=3), top=6)]).read_text()
    assert "does not account for the search" in plain and "not significant" not in _visible(plain)


def test_report_command_from_labels_file(report, tmp_path, capsys):
    _, res = report
    assert main(["report", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "r.html")]) == 0
    assert "wrote" in capsys.readouterr().out
    page = (tmp_path / "r.html").read_text()
    assert page.count("<tr>") > len(res)  # the all-neurons table
    assert main(["report", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "x.html"), "--layer", "nope"]) == 2


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    path, _ = report
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Layer fc" in dom.stdout and dom.stdout.count('class="neuron"') == 3
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1100,1600", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    img = decode_png(shot.read_bytes())
    assert img.shape[:2] == (1600, 1100)
    assert len(np.unique(img.reshape(-1, img.shape[-1]) if img.ndim == 3 else img)) > 10  # not a blank page


def test_token_contexts_shade_each_token_by_its_activation():
    from invert_fast.apps.report import token_contexts_html

    texts = ["The", " cat", " sat", ".", "A", " dog", " ran", " <&>"]
    seq = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    a = np.array([0.0, 4.0, 1.0, -2.0, 0.5, 2.0, 4.0, 3.0])
    out = token_contexts_html(a, texts, seq, top=5, before=1, after=1)
    rows = out.split("<p>")[1:]
    assert len(rows) == 2  # one context per sequence: the tie at 4.0 goes to the earlier sample, then sequence 1
    assert ">The<" in rows[0] and ">.<" not in rows[0] and '"s20 c"' in rows[0].split(" cat")[0]  # the centre
    assert 'class="s5" title="1"' in rows[0]  # 1 / 4 of the peak: 5 / 20
    assert "&lt;&amp;&gt;" in rows[1] and 'title="-2"' not in out  # escaped text; the window is 1 either side
    with pytest.raises(ValueError, match=r"token_texts, sequence: expected one per sample \(8\), got 7 and 8"):
        token_contexts_html(a, texts[:-1], seq)


def test_family_plot_splits_each_label_over_its_positive_atoms(tmp_path):
    from invert_fast.apps.report import family_shares
    from invert_fast.concepts.tokens import concept_family
    from invert_fast.core.formula import Formula
    from invert_fast.core.results import Explanation, Explanations

    def label(text):
        if not text:
            return []  # a neuron with no label
        f = Formula.parse(text)
        return [Explanation(0, 0, f, f.length, 0.9, 0.8, 0.1, 1e-3, -3.0)]

    rows = [label('"upos=NOUN" & "next:tok=␣the"'), label('~punctuation & ~"pos=0"'), label(""),
            label('"dep=nsubj" | "tok=␣a"')]  # fmt: skip
    res = Explanations(rows, layer="layer0")
    shares = family_shares(res, concept_family)
    assert shares == {"part of speech": 0.5, "next token/word": 0.5, "lexical": 0.5, "position": 0.5,
                      "dependency": 0.5, "token identity": 0.5}  # fmt: skip
    path = write_report(tmp_path / "r.html", [LayerReport(res)], family=concept_family)
    page = path.read_text()
    assert "Concept families of the best labels, per layer" in page and "<title>next token/word: 16.7%</title>" in page


def test_token_views_show_quantiles_and_both_kinds_of_error():
    from invert_fast.apps.report import token_views_html

    texts = [f" w{i}" for i in range(12)]
    seq = np.repeat(np.arange(6), 2)  # six sequences of two tokens
    a = np.array([9.0, 0.0, 8.0, 0.1, 7.0, 0.2, 6.0, 0.3, 5.0, 0.4, 0.5, 4.0])
    m = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0], dtype=bool)  # the formula: even samples
    page = token_views_html(a, texts, seq, m)
    heads = [h.split("</h4>")[0] for h in page.split("<h4>")[1:]]
    assert heads == ["top activations", "at the 99th, 90th, 75th and 50th percentiles",
                     "the formula holds, the neuron is silent", "strong activations the formula misses"]  # fmt: skip
    sections = dict(zip(heads, page.split("<h4>")[1:], strict=True))
    silent = sections["the formula holds, the neuron is silent"]
    assert (
        re.search(r'class="s\d+ c', silent).start() < silent.index("> w10<") and "(0.5)" in silent.split("</p>")[0]
    )  # lowest inside
    missed = sections["strong activations the formula misses"]
    assert "(4)" in missed.split("</p>")[0] and "> w11<" in missed.split("</p>")[0]  # highest outside: sample 11
    first = sections["top activations"].split("</p>")[0]
    assert "(9)" in first and ' u" title="9"' in first and ' u" title="0"' not in first


def test_the_layers_at_a_glance_plot_medians_held_out_and_significance(tmp_path):
    from invert_fast.apps.report import LayerReport, svg_layer_summary, write_report

    g = torch.Generator().manual_seed(0)
    cs = inv.ConceptSet(torch.rand(300, 4, generator=g) < 0.3, ["a", "b", "c", "d"])
    x = torch.randn(300, 5, generator=g) + cs.dense()[:, :1].float() * 2
    layers = [LayerReport(inv.explain(x, cs, L=1, B=1, permutations=9, layer=f"l{i}")) for i in range(3)]
    svg = svg_layer_summary(layers, held_out={"l0": 0.7, "l2": 0.6})
    assert svg.count("<polyline") == 2 and svg.count("significant</title>") == 3
    page = write_report(tmp_path / "r.html", layers, glance=True, held_out={"l1": 0.8}).read_text(encoding="utf-8")
    assert "The layers at a glance" in page
    bare = [LayerReport(inv.explain(x, cs, L=1, B=1, layer="l"))]  # no permutations: no bars
    assert "significant</title>" not in svg_layer_summary(bare)


def _token_case(sequences: int, neurons: int, fires: int):
    """Sentences of tokens with markup, quotes and Unicode; neuron `fires` fires on "<b>": (sequence, texts,
    activations, concepts, labels)."""
    words = ["<b>", 'say "hi"', " café", " 日本", " the", " end", "."]
    seq = np.repeat(np.arange(sequences), len(words))
    texts = [words[i % len(words)] for i in range(len(seq))]
    g = torch.Generator().manual_seed(0)
    acts = torch.rand(len(seq), neurons, generator=g)
    acts[::7, fires] += 3
    cs = inv.ConceptSet(torch.tensor([t == "<b>" for t in texts]).unsqueeze(1), ["tok=<b>"])
    return seq, texts, acts, cs, inv.explain(acts, cs, L=1, B=1, layer="tokens")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_token_report_renders_contexts_and_shading_in_headless_chromium(tmp_path):
    # Token texts with markup, quotes and Unicode: escaped, shown as text; tokens shaded red by activation.
    seq, texts, acts, cs, res = _token_case(40, 2, 0)
    cols = {0: acts[:, 0].double().numpy()}
    layer = LayerReport(res, cols, cs, neurons=[0], token_texts=texts, sequence=seq)
    path = write_report(tmp_path / "t.html", [layer], "token report")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert (
        dom.stdout.count('class="ctx"') >= 2
        and "&lt;b&gt;" in dom.stdout
        and "<b>" not in _visible(dom.stdout.split("<body>")[1])
    )
    assert "café" in dom.stdout and "日本" in dom.stdout
    shot = tmp_path / "shot.png"
    run = subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1100,1400", path.as_uri()],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    pil = pytest.importorskip("PIL.Image")  # the screenshot's rows are PNG-filtered: decode it properly
    img = np.asarray(pil.open(shot).convert("RGB")).astype(int)[950:]  # the contexts, below the histograms
    red = (img[..., 0] > 180) & (img[..., 1] < 150) & (img[..., 2] < 150)  # the strongest tokens' shading
    pale = (img[..., 0] > 230) & (img[..., 1] < 235) & (img[..., 1] > 150) & (img[..., 0] - img[..., 1] > 15)
    assert red.sum() > 50 and pale.sum() > 50  # strong and weak activations both shaded


class _SparseStore:
    """A store whose reads are SparseColumns, as a delphi cache's."""

    def __init__(self, x):
        from invert_fast.core.sparse import as_sparse

        self.x, self.shape = x, tuple(x.shape)
        self.as_sparse = as_sparse

    def read(self, d0, d1):
        return self.as_sparse(self.x[:, d0:d1].to_sparse())


def _brute_contexts(a, seq, top, before, after):
    """Centres (activations > 0, highest first, ties the earlier sample, one per sequence) and shading
    levels, plainly."""
    order = sorted((i for i in range(len(a)) if a[i] > 0), key=lambda i: (-a[i], i))
    centers, seen = [], set()
    for i in order:
        if seq[i] not in seen and len(centers) < top:
            seen.add(seq[i])
            centers.append(i)
    peak = max(max(a), 0.0)
    shades = []
    for i in centers:
        row = []
        for j in range(i - before, i + after + 1):
            inside = 0 <= j < len(a) and seq[j] == seq[i]
            row.append(15 if not inside else int(np.round(14 * max(a[j], 0) / peak)))
        shades.append(row)
    return centers, shades


@pytest.mark.parametrize("candidates", [2, 5, 64])
def test_token_contexts_equal_a_plain_selection_with_ties_and_short_sequences(candidates):
    # Ties at the candidates' cut, sequences repeating at the top, a neuron with fewer sequences than
    # contexts asked for, an all-negative neuron and an all-zero one (no contexts); sparse input the same.
    g = torch.Generator().manual_seed(0)
    seq = np.repeat(np.arange(6), [1, 5, 2, 7, 3, 4])
    n = len(seq)
    acts = torch.round(torch.randn(n, 6, generator=g, dtype=torch.float64) * 2) / 2
    acts[:, 1] = 1.0  # all tied
    acts[3:8, 2] = 9.0  # one sequence holds the top
    acts[:, 3] = -torch.rand(n, generator=g, dtype=torch.float64)
    acts[:, 4] = 0.0
    for top, before, after in ((3, 2, 1), (7, 0, 0), (2, 8, 3)):
        ctx = token_contexts(acts.numpy(), seq, top=top, before=before, after=after, block=4, candidates=candidates)
        sparse = token_contexts(_SparseStore(acts), seq, top=top, before=before, after=after, block=4)
        for name in ("centers", "values", "shades"):
            assert np.array_equal(getattr(sparse, name), getattr(ctx, name)), name
        for d in range(6):
            a = acts[:, d].tolist()
            centers, shades = _brute_contexts(a, seq, top, before, after)
            got = [int(c) for c in ctx.centers[d] if c >= 0]
            assert got == centers, (top, d)
            assert ctx.values[d, : len(got)].tolist() == [a[i] for i in centers]
            assert ctx.shades[d, : len(got)].tolist() == shades
            assert (ctx.centers[d, len(got) :] == -1).all()
    with pytest.raises(ValueError, match=r"^sequence: expected one per sample \(22\), got shape \(3,\)$"):
        token_contexts(acts.numpy(), seq[:3])
    with pytest.raises(ValueError, match=r"^top: expected an integer >= 1, got 0$"):
        token_contexts(acts.numpy(), seq, top=0)


def test_layer_data_keeps_markup_as_json_text_and_checks_its_contexts():
    # Formula text with "</script>" cannot end the data element; contexts of another layer's size fail.
    y = torch.zeros(30, 1, dtype=torch.bool)
    y[:10, 0] = True
    cs = inv.ConceptSet(y, ["</script><b>x"])
    acts = y.double() + 0.01 * torch.arange(30, dtype=torch.float64).unsqueeze(1)
    res = inv.explain(acts, cs, L=1, B=1, layer="l")
    data = layer_data(LayerReport(res), None)
    assert data["formulas"] == [str(res[0][0].formula)] and data["best"][0][1] == round(res[0][0].auc, 4)
    page = report_module._json_script(data, 'class="inv-layer"')
    assert "</script><b>" not in page and page.count("</script>") == 1
    assert report_module._nibbles(np.array([1, 2, 15, 0, 7])) == bytes([0x12, 0xF0, 0x7F])
    ctx = token_contexts(torch.cat([acts, acts], 1).numpy(), np.zeros(30, dtype=int))
    layer = LayerReport(res, token_texts=["t"] * 30, contexts=ctx)
    with pytest.raises(ValueError, match=r"^contexts: expected 1 neurons \(the labels'\), got 2$"):
        layer_data(layer, 0)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_the_neuron_picker_renders_any_neuron_and_the_script_tables_in_headless_chromium(tmp_path, monkeypatch):
    # A report past STATIC_TABLE_LIMIT: the all-neurons tables come from the layer data, a page at a time; the
    # address #pick=LAYER:NEURON renders a neuron not among the selected ones, with its contexts from the
    # compact data, token text with markup and Unicode as text, shaded.
    monkeypatch.setattr(report_module, "STATIC_TABLE_LIMIT", 10)
    seq, texts, acts, cs, res = _token_case(60, 150, 137)
    ctx = token_contexts(acts.numpy(), seq)
    layer = LayerReport(res, None, cs, neurons=[0], token_texts=texts, sequence=seq, contexts=ctx)
    path = write_report(tmp_path / "t.html", [layer], "picker")
    page = path.read_text()
    assert "<tr><td><a href" not in page  # no static all-neurons rows
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    url = path.as_uri() + "#pick=0:137"
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shown = _visible(dom.stdout)
    pick = shown[shown.index('id="inv-pick"') :]
    assert "tokens · neuron 137" in pick and html.escape(str(res[137][0].formula), quote=False) in pick
    assert pick.count("<p><span") == 3 and "&lt;b&gt;" in pick and "<b>" not in pick and "日本" in pick
    assert "background: rgb(214, 39, 40); outline" in pick  # the centre, at the neuron's peak: fully shaded
    assert "neurons 1–100 of 150" in shown and shown.count("#pick=0:") >= 100  # the table's first page
