"""A self-contained HTML report of INVERT labels: one file, inline SVG plots and images, one small script.

Per neuron: the formula in words, AUC, p-value, the activation distributions inside and outside the
formula's mask, and the top-activating images or, for token models, the top-activating contexts with
every token shaded by the neuron's activation (as Neuronpedia and delphi show them). Per layer: the AUC
histogram, the most common concepts, and a table of every neuron's best label. Across layers, given a
family for each concept: which families the best labels use, layer by layer.

Fit for whole models: every neuron's best label (and, for token layers given TokenContexts, its top
contexts) is embedded once as compact JSON, and a neuron picker renders any neuron on demand (also from
the address: report.html#pick=LAYER:NEURON); past STATIC_TABLE_LIMIT neurons the all-neurons tables are
rendered by the script, a page at a time, instead of as HTML. The script builds text with textContent,
never HTML, so corpus text and concept names stay text.
"""

from __future__ import annotations

import base64
import html
import json
import math
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..core.concepts import ConceptSet
from ..core.formula import Formula
from ..core.results import Explanations
from ..dissection.compare import INVERT_DETECTOR_AUC
from ..files import atomic_write


def png_bytes(img: np.ndarray) -> bytes:
    """Encode an [H, W] (gray) or [H, W, 3] (RGB) uint8 image as PNG."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"img: expected [H, W] or [H, W, 3] uint8, got shape {img.shape}")
    h, w = img.shape[:2]
    color = 0 if img.ndim == 2 else 2
    raw = b"".join(b"\0" + img[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    head = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def img_tag(img: np.ndarray, size: int = 56, title: str = "") -> str:
    data = base64.b64encode(png_bytes(img)).decode()
    return f'<img src="data:image/png;base64,{data}" width="{size}" height="{size}" title="{html.escape(title)}" class="px">'


def formula_in_words(f: Formula) -> str:
    """'sneaker | (sandal & ~boot)' -> 'sneaker or (sandal and not boot)'."""
    words: dict[int, str] = {}
    for g in f.subformulas():  # operands first: no recursion, whatever the depth
        if g.op == "atom":
            words[id(g)] = ("not " if g.negated else "") + g.name
        else:
            parts = [words[id(a)] if a.op == "atom" else f"({words[id(a)]})" for a in g.args]
            words[id(g)] = f" {g.op} ".join(parts)
    return words[id(f)]


def svg_histograms(
    series: list[tuple[np.ndarray, str, str]], bins: int = 30, width: int = 320, height: int = 120
) -> str:
    """Overlaid density histograms: series of (values, label, color)."""
    vals = [v for v, _, _ in series if len(v)]
    if not vals:
        return "<svg></svg>"
    lo = min(float(v.min()) for v in vals)
    hi = max(float(v.max()) for v in vals)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    dens = [np.histogram(v, bins=edges)[0] / max(len(v), 1) if len(v) else np.zeros(bins) for v, _, _ in series]
    top = max(float(d.max()) for d in dens) or 1.0
    pad, bw = 18, (width - 2) / bins
    out = [f'<svg width="{width}" height="{height + pad}" role="img" aria-label="activation histograms">']
    for d, (_, _, color) in zip(dens, series, strict=True):
        for i, v in enumerate(d):
            hgt = (height - 4) * v / top
            out.append(
                f'<rect x="{1 + i * bw:.1f}" y="{height - hgt:.1f}" width="{bw:.1f}" height="{hgt:.1f}" fill="{color}" fill-opacity="0.5"/>'
            )
    out.append(f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#333"/>')
    out.append(f'<text x="0" y="{height + 14}" font-size="11">{lo:.3g}</text>')
    out.append(f'<text x="{width}" y="{height + 14}" font-size="11" text-anchor="end">{hi:.3g}</text>')
    legend = " / ".join(f'<tspan fill="{c}">{html.escape(lab)}</tspan>' for _, lab, c in series)
    out.append(f'<text x="{width / 2}" y="{height + 14}" font-size="11" text-anchor="middle">{legend}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_grouped_bars(
    groups: list[tuple[str, list[float]]], series: list[tuple[str, str]], width: int = 420, row: int = 14
) -> str:
    """Horizontal grouped bars: groups of (label, one value per series), series of (name, color)."""
    top = max((v for _, vals in groups for v in vals), default=0) or 1
    label_w, pad = 130, 4
    bar_w = width - label_w - 40
    step = row * len(series) + pad
    height = step * len(groups) + 18
    out = [f'<svg width="{width}" height="{height}" role="img" aria-label="grouped bar chart">']
    for g, (label, vals) in enumerate(groups):
        y0 = g * step
        out.append(
            f'<text x="{label_w - 6}" y="{y0 + row * len(series) / 2 + 4:.1f}" font-size="11" '
            f'text-anchor="end">{html.escape(label)}</text>'
        )
        for i, (v, (_, color)) in enumerate(zip(vals, series, strict=True)):
            w = bar_w * v / top
            out.append(f'<rect x="{label_w}" y="{y0 + i * row}" width="{w:.1f}" height="{row - 2}" fill="{color}"/>')
            out.append(f'<text x="{label_w + w + 3:.1f}" y="{y0 + i * row + row - 4}" font-size="10">{v:g}</text>')
    legend = " · ".join(f'<tspan fill="{c}">{html.escape(n)}</tspan>' for n, c in series)
    out.append(f'<text x="{label_w}" y="{height - 4}" font-size="11">{legend}</text></svg>')
    return "".join(out)


@dataclass
class LayerReport:
    """What the report shows of one layer.

    Attributes:
        labels: explain()'s result for the layer.
        activations: [N, D] activations, or {neuron: [N] activations} for the neurons shown (optional:
            plots, images and contexts need them).
        concepts: the ConceptSet the labels were found with (optional, for masks and descriptions).
        images: [N, H, W] or [N, H, W, 3] uint8 (optional, for top-activating images).
        neurons: neurons to show in detail (default: the `top` best labelled).
        neuron_names: optional display name per neuron (e.g. ImageNet class of a logit).
        token_texts, sequence: for token models, the [N] decoded text of every sample's token and its
            [N] sequence index (samples in (sequence, position) order): the top-activating contexts.
        contexts: TokenContexts of every neuron (token_contexts()): the neuron picker shows any neuron's
            top contexts from them (needs token_texts).
    """

    labels: Explanations
    activations: torch.Tensor | Mapping | None = None
    concepts: ConceptSet | None = None
    images: np.ndarray | None = None
    neurons: list[int] | None = None
    top: int = 24
    neuron_names: dict[int, str] = field(default_factory=dict)
    token_texts: Sequence[str] | None = None
    sequence: np.ndarray | None = None
    contexts: TokenContexts | None = None


@dataclass
class TokenContexts:
    """Every neuron's top-activating contexts in a compact form, for the report's neuron picker.

    Attributes:
        centers: [D, top] int64 sample at the centre of each context, best first (among the samples with
            activation > 0: highest first, ties the earlier sample, one per sequence); -1 where a neuron
            has fewer such sequences.
        values: [D, top] float64 the neuron's activation at each centre.
        shades: [D, top, before + 1 + after] uint8 each window token's shading level, round(14 max(a, 0) /
            peak) with peak the neuron's largest activation; 15 outside the centre's sequence (so two
            levels pack in a byte in the report's data).
        before, after: tokens shown before and after each centre.
    """

    centers: np.ndarray
    values: np.ndarray
    shades: np.ndarray
    before: int
    after: int


def token_contexts(
    activations, sequence, top: int = 3, before: int = 8, after: int = 3, block: int = 256, candidates: int = 64
) -> TokenContexts:
    """TokenContexts of every neuron of a token layer, read in blocks of neurons.

    A neuron's contexts are centred on its samples with activation > 0 (a silent neuron has none), highest
    first, ties the earlier sample, one per sequence. Sparse stores (a delphi cache) are read as their
    stored entries, never densified.

    Args:
        activations: [N, D] numpy array (a memory map is read a block at a time), tensor, or a store with
            .shape and .read(d0, d1) (io.store.NeuronStore).
        sequence: [N] sequence of each sample (samples in (sequence, position) order).
        top, before, after: contexts per neuron and their window.
        block: neurons read at a time; candidates: each dense neuron's largest activations looked at first
            (its whole column where ties or repeated sequences exhaust them).

    Example:
        >>> ctx = token_contexts(acts, index.sequence.numpy())    # acts [N, D]
        >>> ctx.centers.shape
        (D, 3)
    """
    from ..core.sparse import SparseColumns

    seq = np.asarray(sequence)
    n, d = activations.shape
    if seq.shape != (n,):
        raise ValueError(f"sequence: expected one per sample ({n}), got shape {seq.shape}")
    for name, v in (("top", top), ("before", before), ("after", after)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "top" else 0):
            raise ValueError(f"{name}: expected an integer >= {1 if name == 'top' else 0}, got {v!r}")
    win = before + 1 + after
    centers = np.full((d, top), -1, dtype=np.int64)
    values = np.zeros((d, top), dtype=np.float64)
    shades = np.full((d, top, win), 15, dtype=np.uint8)
    offsets = np.arange(-before, after + 1)

    def first_sequences(order):
        chosen, seen = [], set()
        for i in order:
            if seq[i] not in seen:
                seen.add(seq[i])
                chosen.append(int(i))
                if len(chosen) == top:
                    break
        return chosen

    def shade(row, chosen, value_at, peak):
        for r, i in enumerate(chosen):
            w = i + offsets
            inside = (w >= 0) & (w < n)
            inside[inside] = seq[w[inside]] == seq[i]
            centers[row, r], values[row, r] = i, value_at(np.array([i]))[0]
            level = np.round(14 * np.maximum(value_at(w[inside]), 0) / peak)
            shades[row, r, inside] = level.astype(np.uint8)

    for d0 in range(0, d, block):
        d1 = min(d, d0 + block)
        part = activations.read(d0, d1) if hasattr(activations, "read") else activations[:, d0:d1]
        if isinstance(part, SparseColumns):
            ptr = part.indptr.cpu().tolist()
            rows_all, vals_all = part.indices.cpu().numpy(), part.values.double().cpu().numpy()
            for j in range(d1 - d0):
                rows, vals = rows_all[ptr[j] : ptr[j + 1]], vals_all[ptr[j] : ptr[j + 1]]
                pos = vals > 0
                if not pos.any():
                    continue
                r_pos, v_pos = rows[pos], vals[pos]
                chosen = first_sequences(r_pos[np.lexsort((r_pos, -v_pos))])

                def value_at(w, rows=rows, vals=vals):
                    k = np.searchsorted(rows, w).clip(max=max(len(rows) - 1, 0))
                    return np.where(rows[k] == w, vals[k], 0.0) if len(rows) else np.zeros(len(w))

                shade(d0 + j, chosen, value_at, float(v_pos.max()))
            continue
        # A copy of the block (a memory map's slice is read-only, which torch would warn about).
        if isinstance(part, torch.Tensor):
            cols = part.detach().double().cpu()
        else:
            cols = torch.from_numpy(np.array(part, dtype=np.float64))
        k = min(n, candidates)
        head_v, head_i = torch.topk(cols, k, dim=0)  # [k, b]
        cols_np, head_v, head_i = cols.numpy(), head_v.numpy(), head_i.numpy()
        for j in range(d1 - d0):
            a = cols_np[:, j]
            peak = float(a.max()) if n else 0.0
            if peak <= 0:
                continue
            idx = head_i[:, j]
            idx = idx[np.lexsort((idx, -a[idx]))]  # by value, then sample
            # Samples above the k-th value are all among the candidates; at or below it, the whole column.
            above = idx[a[idx] > max(head_v[-1, j], 0.0)] if k < n else idx[a[idx] > 0]
            chosen = first_sequences(above)
            if len(chosen) < top and k < n:
                order = np.argsort(-a, kind="stable")
                chosen = first_sequences(order[a[order] > 0])
            shade(d0 + j, chosen, lambda w, a=a: a[w], peak)
    return TokenContexts(centers, values, shades, before, after)


STATIC_TABLE_LIMIT = 5000  # neurons in a report above which the all-neurons tables are drawn by the script


SIGNIFICANCE = 0.05  # labels whose search-corrected p-value exceeds this are marked "not significant"


def _fmt_p(e) -> str:
    if e.p_value > 0:
        return f"{e.p_value:.2e}"
    return f"10^{e.log10_p_value:.0f}" if math.isfinite(e.log10_p_value) else "0"


def _fmt_p_search(e) -> str:
    """The search-corrected p-value, marked when not significant ('n/a' without permutations)."""
    if math.isnan(e.p_value_search):
        return "n/a"
    flag = ' <span class="ns">not significant</span>' if e.p_value_search > SIGNIFICANCE else ""
    return f"{e.p_value_search:.3g}{flag}"


def significance_note(res: Explanations) -> str:
    """One sentence on what the layer's p-values account for, and how many best labels are significant."""
    best = [r[0] for r in res if r]
    tested = [e for e in best if not math.isnan(e.p_value_search)]
    if not tested:
        return (
            "p: Mann-Whitney test of the label's mask alone; it does not account for the search that picked "
            "the label among all candidate formulas (run with permutations for a search-corrected p-value)."
        )
    p = res.params.get("permutations")
    count = f"{p} permutations" if p else "permutations"
    ns = sum(e.p_value_search > SIGNIFICANCE for e in tested)
    return (
        f"p (search): permutation test of the whole search ({count} of the samples, max-T over each "
        f"neuron's labels), so it accounts for the choice among all candidate formulas, not for testing many "
        f"neurons. {len(tested) - ns} of {len(tested)} best labels are significant (p (search) &le; {SIGNIFICANCE}); "
        f"{ns} are marked not significant."
    )


def certification_note(res: Explanations) -> str:
    """How many best labels are certified optimal, and the largest gap to the bound ('' when not asked)."""
    best = [(d, r[0]) for d, r in enumerate(res) if r and not math.isnan(r[0].bound)]
    if not best:
        return ""
    cert = sum(e.certified for _, e in best)
    d, e = max(best, key=lambda t: abs(t[1].bound - t[1].auc))
    gap = abs(e.bound - e.auc)
    L = res.params.get("L", "L")
    worst = f"; the largest gap to the bound is {gap:.4f} AUC (neuron {d})" if gap > 0 else ""
    return (
        f"Certified optimal: {cert} of {len(best)} best labels reach the exact best AUC of any admissible formula "
        f"of at most {L} atoms{worst}."
    )


METRIC_COLUMNS = ("iou", "f1", "auprc", "correlation", "cosine")  # core/metrics.py, on every label


def _fmt_metric(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:.3f}"


def _neuron_section(layer: LayerReport, d: int) -> str:
    exps = layer.labels[d]
    name = layer.neuron_names.get(d, "")
    head = f"neuron {d}" + (f" — {html.escape(name)}" if name else "")
    if not exps:
        return f'<section class="neuron"><h3>{head}</h3><p>no admissible formula</p></section>'
    e = exps[0]
    # explain(holdout=...): the labels' AUC on the samples the search did not see, beside the rest.
    held = any(not math.isnan(x.auc_heldout) for x in exps)
    shown = METRIC_COLUMNS + (("auc_heldout",) if held else ())
    rows = "".join(
        f"<tr><td>{x.rank}</td><td><code>{html.escape(str(x.formula))}</code></td><td>{x.auc:.4f}</td>"
        f"<td>{_fmt_p(x)}</td><td>{_fmt_p_search(x)}</td><td>{x.concept_fraction:.1%}</td>"
        + "".join(f"<td>{_fmt_metric(getattr(x, c))}</td>" for c in shown)
        + "</tr>"
        for x in exps
    )
    parts = [
        f'<section class="neuron" id="{html.escape(layer.labels.layer)}-{d}"><h3>{head}</h3>',
        f'<p class="words">{html.escape(formula_in_words(e.formula))}</p>',
        f"<p>AUC {e.auc:.4f} · p {_fmt_p(e)} · p (search) {_fmt_p_search(e)} · {e.concept_fraction:.1%} of samples "
        f"· length {e.length}"
        + ("" if math.isnan(e.auc_heldout) else f" · held-out AUC {e.auc_heldout:.4f}")
        + ("" if math.isnan(e.bound) else f" · bound {e.bound:.4f}{' (certified optimal)' if e.certified else ''}")
        + "</p>",
    ]
    a = _column(layer, d)
    m = e.formula.mask(layer.concepts).numpy() if a is not None and layer.concepts is not None else None
    if m is not None:
        parts.append(svg_histograms([(a[m], "inside the formula", "#d62728"), (a[~m], "outside", "#1f77b4")]))
    if a is not None and layer.token_texts is not None and layer.sequence is not None:
        if m is not None:
            parts.append(token_views_html(a, layer.token_texts, layer.sequence, m))
        else:
            parts.append(token_contexts_html(a, layer.token_texts, layer.sequence))
    if a is not None and layer.images is not None:
        top = np.argsort(-a, kind="stable")[:8]
        parts.append(
            '<div class="imgs">'
            + "".join(img_tag(layer.images[i], title=f"sample {i}: {a[i]:.3g}") for i in top)
            + "</div>"
        )
    descriptions = layer.concepts.definitions if layer.concepts is not None else {}
    notes = [
        f"<li><b>{html.escape(c)}</b>: {html.escape(descriptions[c])}</li>"
        for c in sorted(e.formula.concepts())
        if descriptions.get(c)
    ]
    if notes:
        parts.append("<ul class='desc'>" + "".join(notes) + "</ul>")
    parts.append(
        "<table><tr><th>rank</th><th>formula</th><th>AUC</th><th>p</th><th>p (search)</th><th>fraction</th>"
        + "".join(f"<th>{html.escape(c.replace('_heldout', ' (held out)'))}</th>" for c in shown)
        + "</tr>"
        f"{rows}</table></section>"
    )
    return "".join(parts)


def _column(layer: LayerReport, d: int) -> np.ndarray | None:
    """Neuron d's [N] activations as float64, or None when the report has none of them."""
    acts = layer.activations
    if acts is None:
        return None
    if isinstance(acts, Mapping):
        return np.asarray(acts[d], dtype=np.float64) if d in acts else None
    return acts[:, d].double().numpy()


def token_contexts_html(values: np.ndarray, texts: Sequence[str], sequence: np.ndarray, top: int = 5,
                        before: int = 12, after: int = 4, mask: np.ndarray | None = None,
                        order: np.ndarray | None = None) -> str:  # fmt: skip
    """Contexts of a token neuron: the first `top` samples of `order` (default: highest activation first;
    one per sequence, ties: the earlier sample), each with `before` tokens before it and `after` after
    within its sequence; every token shaded in proportion to its activation over the neuron's largest, in
    20ths (class s0 .. s20; negative activations unshaded), the centre token outlined (class c), each
    value in the tooltip, and with `mask` ([N] bool: where the label's formula is true) those tokens
    underlined (class u).

    Example:
        >>> token_contexts_html(np.array([0.1, 2.0, 0.5]), ["The", " cat", " sat"], np.array([0, 0, 0]))[:19]
        '<div class="ctx"><p>'
    """
    values = np.asarray(values, dtype=np.float64)
    seq = np.asarray(sequence)
    if not (len(values) == len(texts) == len(seq)):
        raise ValueError(
            f"token_texts, sequence: expected one per sample ({len(values)}), got {len(texts)} and {len(seq)}"
        )
    if mask is not None and len(mask) != len(values):
        raise ValueError(f"mask: expected one per sample ({len(values)}), got {len(mask)}")
    order = np.argsort(-values, kind="stable") if order is None else np.asarray(order)
    peak = max(float(values.max()), 0.0) if len(values) else 0.0
    shown, rows = set(), []
    for i in order:
        if len(rows) == top:
            break
        if seq[i] in shown:
            continue
        shown.add(seq[i])
        lo, hi = i, i
        while lo > 0 and i - lo < before and seq[lo - 1] == seq[i]:
            lo -= 1
        while hi + 1 < len(seq) and hi - i < after and seq[hi + 1] == seq[i]:
            hi += 1
        spans = []
        for j in range(lo, hi + 1):
            # Shade classes (_STYLE): s<k> shades k / 20 of the peak, c outlines the centre, u underlines.
            level = round(20 * max(values[j], 0.0) / peak) if peak > 0 else 0
            cls = f"s{level}" + (" c" if j == i else "") + (" u" if mask is not None and mask[j] else "")
            spans.append(f'<span class="{cls}" title="{values[j]:.4g}">{html.escape(texts[j])}</span>')
        rows.append(f"<p>{''.join(spans)} <small>({values[i]:.4g})</small></p>")
    return '<div class="ctx">' + "".join(rows) + "</div>"


def token_views_html(values: np.ndarray, texts: Sequence[str], sequence: np.ndarray, mask: np.ndarray) -> str:
    """What a person checks before trusting a token neuron's label (as delphi and Neuronpedia show a latent):
    the top-activating contexts, one context from each of the upper activation quantiles (the top ones
    alone flatter a label), and the label's two kinds of error: tokens where the formula holds but the
    neuron is silent (its lowest activations inside the mask) and the strongest activations the formula
    misses (outside the mask). Tokens where the formula holds are underlined.

    Example:
        >>> token_views_html(acts[:, d], token_texts, sequence, formula.mask(concepts).numpy())[:4]
        '<h4>'
    """
    values = np.asarray(values, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    ranked = np.argsort(-values, kind="stable")
    n = len(values)
    parts = ["<h4>top activations</h4>", token_contexts_html(values, texts, sequence, mask=m)]
    # One context per quantile q: the sample whose rank is nearest q (ties: the earlier sample).
    quantiles = (0.99, 0.9, 0.75, 0.5)
    picks = ranked[[min(n - 1, int(round((1 - q) * (n - 1)))) for q in quantiles]]
    parts += ["<h4>at the 99th, 90th, 75th and 50th percentiles</h4>",
              token_contexts_html(values, texts, sequence, top=len(quantiles), mask=m, order=picks, before=8, after=3)]  # fmt: skip
    inside = np.flatnonzero(m)
    if inside.size:
        silent = inside[np.argsort(values[inside], kind="stable")]
        parts += ["<h4>the formula holds, the neuron is silent</h4>",
                  token_contexts_html(values, texts, sequence, top=3, mask=m, order=silent, before=8, after=3)]  # fmt: skip
    outside = np.flatnonzero(~m)
    if outside.size:
        missed = outside[np.argsort(-values[outside], kind="stable")]
        parts += ["<h4>strong activations the formula misses</h4>",
                  token_contexts_html(values, texts, sequence, top=3, mask=m, order=missed, before=8, after=3)]  # fmt: skip
    return "".join(parts)


def family_shares(labels: Explanations, family: Callable[[str], str]) -> Counter:
    """How the best labels of a layer divide among concept families: each label counts 1, split evenly over
    the families of its positive atoms (of all its atoms when it has none, e.g. `~punctuation & ~pos=0`).

    Example:
        >>> family_shares(res, concept_family)["part of speech"]
        412.5
    """
    out: Counter = Counter()
    for r in labels:
        if not r:
            continue
        named = r[0].formula.positive_concepts() or r[0].formula.concepts()
        for name in named:
            out[family(name)] += 1 / len(named)
    return out


_FAMILY_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                  "#bcbd22", "#17becf")  # fmt: skip


def svg_family_plot(layers: list[LayerReport], family: Callable[[str], str], order: Sequence[str] = ()) -> str:
    """One stacked bar per layer: the share of its best labels in each concept family (family_shares)."""
    shares = [family_shares(x.labels, family) for x in layers]
    names = list(order) + sorted({f for s in shares for f in s} - set(order))
    names = [f for f in names if any(s[f] for s in shares)]
    row, label_w, bar_w = 14, 90, 520
    height = row * len(layers) + 20 + 16 * ((len(names) + 3) // 4)
    out = [f'<svg width="{label_w + bar_w + 10}" height="{height}" role="img" aria-label="concept families per layer">']
    for i, (x, s) in enumerate(zip(layers, shares, strict=True)):
        y, total, left = i * row, sum(s.values()) or 1.0, float(label_w)
        out.append(f'<text x="{label_w - 6}" y="{y + row - 3}" font-size="10" text-anchor="end">'
                   f"{html.escape(x.labels.layer)}</text>")  # fmt: skip
        for k, f in enumerate(names):
            w = bar_w * s[f] / total
            color = _FAMILY_COLORS[k % len(_FAMILY_COLORS)]
            out.append(f'<rect x="{left:.1f}" y="{y}" width="{w:.1f}" height="{row - 2}" fill="{color}">'
                       f"<title>{html.escape(f)}: {s[f] / total:.1%}</title></rect>")  # fmt: skip
            left += w
    y0 = row * len(layers) + 14
    for k, f in enumerate(names):
        color = _FAMILY_COLORS[k % len(_FAMILY_COLORS)]
        x, y = label_w + (k % 4) * 130, y0 + 16 * (k // 4)
        out.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{x + 14}" y="{y}" font-size="11">{html.escape(f)}</text>')  # fmt: skip
    out.append("</svg>")
    return "".join(out)


def svg_layer_summary(layers: list[LayerReport], held_out: Mapping[str, float] | None = None) -> str:
    """The layers at a glance: per layer (x), the median best AUC (solid), the median held-out AUC where
    given (dashed; {layer: median}), and the share of best labels significant after the search (bars;
    labels without permutations count as not tested, and a layer with none tested has no bar).

    Example:
        >>> svg_layer_summary([LayerReport(res0), LayerReport(res1)], held_out={"layer0": 0.81})
    """
    held_out = dict(held_out or {})
    stats = []
    for x in layers:
        best = [r[0] for r in x.labels if len(r)]
        med = float(np.median([e.auc for e in best])) if best else float("nan")
        tested = [e for e in best if not math.isnan(e.p_value_search)]
        share = sum(e.p_value_search <= SIGNIFICANCE for e in tested) / len(tested) if tested else float("nan")
        stats.append((x.labels.layer, med, held_out.get(x.labels.layer, float("nan")), share))
    w, h, pad, step = 60 + 18 * len(stats), 220, 40, 18
    py = lambda v: h - pad - (h - pad - 10) * v  # noqa: E731  (0..1 upwards)
    out = [
        f'<svg width="{w + 170}" height="{h + 40}" role="img" aria-label="median AUC and share significant per layer">'
    ]
    for v in (0.0, 0.5, 1.0):
        out.append(f'<line x1="{pad}" y1="{py(v):.1f}" x2="{w}" y2="{py(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{pad - 4}" y="{py(v) + 3:.1f}" font-size="10" text-anchor="end">{v:.1f}</text>')  # fmt: skip
    for i, (name, _med, _held, share) in enumerate(stats):
        x = pad + 8 + i * step
        if not math.isnan(share):
            out.append(f'<rect x="{x - 5}" y="{py(share):.1f}" width="10" height="{py(0) - py(share):.1f}" fill="#c7dcef">'
                       f"<title>{html.escape(name)}: {share:.0%} significant</title></rect>")  # fmt: skip
        out.append(f'<text x="{x}" y="{h - pad + 12}" font-size="9" text-anchor="end" '
                   f'transform="rotate(-60 {x} {h - pad + 12})">{html.escape(name)}</text>')  # fmt: skip
    for k, dash in enumerate(("", ' stroke-dasharray="4 3"')):
        pts = " ".join(
            f"{pad + 8 + i * step},{py(v[1 + k]):.1f}" for i, v in enumerate(stats) if not math.isnan(v[1 + k])
        )
        if pts:
            out.append(f'<polyline points="{pts}" fill="none" stroke="#d62728" stroke-width="2"{dash}/>')
    legend = [("#d62728", "median best AUC", ""), ("#d62728", "median held-out AUC", ' stroke-dasharray="4 3"')]
    for k, (color, text, dash) in enumerate(legend):
        out.append(f'<line x1="{w + 10}" y1="{20 + 16 * k}" x2="{w + 30}" y2="{20 + 16 * k}" stroke="{color}" '
                   f'stroke-width="2"{dash}/><text x="{w + 34}" y="{24 + 16 * k}" font-size="11">{text}</text>')  # fmt: skip
    out.append(f'<rect x="{w + 10}" y="{46}" width="20" height="10" fill="#c7dcef"/>'
               f'<text x="{w + 34}" y="{55}" font-size="11">share significant</text></svg>')  # fmt: skip
    return "".join(out)


def simplicity_html(curves: Sequence) -> str:
    """Simplicity against precision (core/simplicity.py) for several layers: a plot of the median AUC
    against L (solid: best over all samples; dashed: held out) and each layer's table.

    Example:
        >>> simplicity_html([simplicity_precision(acts, concepts, layer="hidden")])
    """
    if not curves:
        return ""
    lo = min(float(np.nanmin([r["median held-out AUC"] for r in c.rows()] + [r["median best AUC"] for r in c.rows()]))
             for c in curves)  # fmt: skip
    lo = max(0.0, min(lo, 1.0) - 0.02)
    w, h, pad = 360, 200, 40
    top_l = max(max(c.lengths) for c in curves)
    px = lambda length: pad + (w - 2 * pad) * (length - 1) / max(top_l - 1, 1)  # noqa: E731
    py = lambda a: h - pad + 10 - (h - pad - 10) * (a - lo) / max(1.0 - lo, 1e-9)  # noqa: E731
    out = [f'<svg width="{w + 150}" height="{h}" role="img" aria-label="median AUC against formula length">',
           f'<line x1="{pad}" y1="{h - pad + 10}" x2="{w - pad}" y2="{h - pad + 10}" stroke="#999"/>',
           f'<line x1="{pad}" y1="10" x2="{pad}" y2="{h - pad + 10}" stroke="#999"/>']  # fmt: skip
    for length in range(1, top_l + 1):
        out.append(
            f'<text x="{px(length):.1f}" y="{h - pad + 24}" font-size="10" text-anchor="middle">L={length}</text>'
        )
    for a in (lo, (lo + 1) / 2, 1.0):
        out.append(f'<text x="{pad - 4}" y="{py(a) + 3:.1f}" font-size="10" text-anchor="end">{a:.2f}</text>')
    for k, c in enumerate(curves):
        color = _FAMILY_COLORS[k % len(_FAMILY_COLORS)]
        rows = c.rows()
        for key, dash in (("median best AUC", ""), ("median held-out AUC", ' stroke-dasharray="4 3"')):
            pts = " ".join(f"{px(r['L']):.1f},{py(r[key]):.1f}" for r in rows if np.isfinite(r[key]))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dash}>'
                       f"<title>{html.escape(c.layer)}: {key}</title></polyline>")  # fmt: skip
        out.append(f'<rect x="{w - 20}" y="{14 + 16 * k}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{w - 6}" y="{23 + 16 * k}" font-size="11">{html.escape(c.layer)}</text>')  # fmt: skip
    out.append("</svg>")
    tables = []
    for c in curves:
        body = "".join(
            f"<tr><td>{r['L']}</td><td>{r['median best AUC']:.4f}</td><td>{r['median held-out AUC']:.4f}</td>"
            f"<td>{'' if np.isnan(r['share improved held out']) else format(r['share improved held out'], '.0%')}</td>"
            f"<td>{'' if np.isnan(r['share improved significantly']) else format(r['share improved significantly'], '.0%')}</td>"
            f"<td>{'' if np.isnan(r['median held-out gain']) else format(r['median held-out gain'], '+.4f')}</td></tr>"
            for r in c.rows()
        )
        tables.append(
            f"<h3>{html.escape(c.layer)}</h3><p>Labels fitted on {c.n_fit:,} samples, held out on {c.n_held:,} "
            f"({html.escape(c.split)}).</p><table><tr><th>L</th><th>median best AUC</th><th>median held-out AUC"
            "</th><th>improved held out</th><th>significantly</th><th>median held-out gain</th></tr>"
            + body
            + "</table>"
        )
    return (
        "<p>Median over units of the best AUC with at most L atoms (solid: on all samples, where a longer "
        "formula can only match or beat a shorter one) and of that label's AUC on held-out samples when found "
        "on the other half (dashed); <i>improved held out</i>: the share of units whose held-out AUC rises "
        "with the extra atom, <i>significantly</i>: by more than 1.96 standard errors of the difference "
        "(Hanley &amp; McNeil's, combined as if independent: conservative).</p>" + "".join(out) + "".join(tables)
    )


def best_labelled(labels: Explanations, top: int) -> list[int]:
    """The `top` neurons whose best label has the highest AUC (ties: the lower neuron first), the neurons
    a report shows in detail by default.

    Example:
        >>> best_labelled(explain(acts, concepts), 8)
    """
    best = [(d, r[0]) for d, r in enumerate(labels) if r]
    return [d for d, _ in sorted(best, key=lambda t: -t[1].auc)[:top]]


def _layer_section(layer: LayerReport, index: int = 0, static: bool = True) -> str:
    """One layer's section; static: its all-neurons table as HTML (else drawn by the script from the layer's
    data, index its number in the report)."""
    res = layer.labels
    best = [(d, r[0]) for d, r in enumerate(res) if r]
    aucs = np.array([e.auc for _, e in best]) if best else np.zeros(0)
    common = Counter(c for _, e in best for c in e.formula.concepts()).most_common(15)
    chosen = layer.neurons if layer.neurons is not None else best_labelled(res, layer.top)

    def table():
        return "".join(
            f'<tr><td><a href="#{html.escape(res.layer)}-{d}">{d}</a></td><td>{html.escape(layer.neuron_names.get(d, ""))}</td>'
            f"<td><code>{html.escape(str(e.formula))}</code></td><td>{e.auc:.4f}</td><td>{_fmt_p(e)}</td>"
            f"<td>{_fmt_p_search(e)}</td></tr>"
            for d, e in best
        )

    return "".join(
        [
            f'<h2 id="layer-{html.escape(res.layer)}">Layer {html.escape(res.layer or "(unnamed)")}</h2>',
            f"<p>{len(res)} neurons, {len(best)} labelled; median best AUC {float(np.median(aucs)) if len(aucs) else float('nan'):.4f}.</p>",
            f'<p class="sig">{significance_note(res)}</p>',
            f'<p class="sig">{certification_note(res)}</p>' if certification_note(res) else "",
            "<h4>AUC of each neuron's best formula</h4>",
            svg_histograms([(aucs, "best AUC", "#2ca02c")]),
            "<h4>Most common concepts in best formulas</h4><table><tr><th>concept</th><th>neurons</th></tr>",
            "".join(f"<tr><td>{html.escape(c)}</td><td>{n}</td></tr>" for c, n in common),
            "</table>",
            f"<h4>Selected neurons ({len(chosen)})</h4>",
            "".join(_neuron_section(layer, d) for d in chosen),
            (
                "<details><summary>All neurons</summary><table><tr><th>neuron</th><th>name</th><th>best formula</th>"
                f"<th>AUC</th><th>p</th><th>p (search)</th></tr>{table()}</table></details>"
                if static
                else f'<details><summary>All neurons</summary><div class="inv-table" data-layer="{index}"></div>'
                "<noscript>(the table needs JavaScript)</noscript></details>"
            ),
        ]
    )


def _json_script(obj, attrs: str) -> str:
    """obj as JSON in a <script type="application/json"> element: "</" written "<\\/" (the same JSON), so no
    string inside can close the element."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return f'<script type="application/json" {attrs}>{text}</script>'


def _num(v: float, digits: int):
    """A float for the page's data: rounded to `digits` decimals, None for NaN."""
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def _nibbles(levels: np.ndarray) -> bytes:
    """Levels 0..15 packed two a byte, the first in the high half (an odd count padded with 15)."""
    flat = np.asarray(levels, dtype=np.uint8).reshape(-1)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(15))
    return ((flat[0::2] << 4) | flat[1::2]).astype(np.uint8).tobytes()


def layer_data(layer: LayerReport, tokens: int | None) -> dict:
    """The compact data the neuron picker and the script's tables read for one layer: each neuron's best label
    (formula as an index into the layer's distinct formulas, AUC, p (search), fraction), its display name,
    and with TokenContexts the contexts (centres, values, base64 shading levels) and the token table's number.
    """
    res = layer.labels
    formulas: dict[str, int] = {}
    best = []
    for r in res:
        if not r:
            best.append(None)
            continue
        e = r[0]
        f = formulas.setdefault(str(e.formula), len(formulas))
        best.append([f, _num(e.auc, 4), _num(e.p_value_search, 4), _num(e.concept_fraction, 4)])
    data = {
        "layer": res.layer,
        "formulas": list(formulas),
        "best": best,
        "names": {str(d): name for d, name in layer.neuron_names.items()},
    }
    ctx = layer.contexts
    if ctx is not None and tokens is not None:
        if ctx.centers.shape[0] != len(res):
            raise ValueError(f"contexts: expected {len(res)} neurons (the labels'), got {ctx.centers.shape[0]}")
        data["ctx"] = {
            "tokens": tokens,
            "top": int(ctx.centers.shape[1]),
            "before": ctx.before,
            "after": ctx.after,
            "centers": ctx.centers.reshape(-1).tolist(),
            "values": [float(f"{v:.4g}") for v in ctx.values.reshape(-1).tolist()],
            "shades": base64.b64encode(_nibbles(ctx.shades)).decode("ascii"),  # two levels a byte, high first
        }
    return data


_PICKER = """<h2 id="picker">Any neuron</h2><p>Pick a layer and a neuron (or open
<code>report.html#pick=LAYER:NEURON</code>): its best label and, for token layers, its top-activating contexts,
each token shaded by the neuron's activation (15 levels), the centre outlined.</p>
<p><select id="inv-layer"></select> neuron <input id="inv-neuron" type="number" min="0" value="0" style="width:7em">
<button id="inv-show">show</button></p><div id="inv-pick"></div>"""

_SCRIPT = r"""(function(){
const $=id=>document.getElementById(id);
const data=[...document.querySelectorAll('script.inv-layer')].map(s=>JSON.parse(s.textContent));
const tables={};
function tokens(i){if(!(i in tables))tables[i]=JSON.parse($('inv-tokens-'+i).textContent);return tables[i];}
function el(tag,text,attrs){const e=document.createElement(tag);if(text!==undefined&&text!==null)e.textContent=text;
 for(const k in attrs||{})e.setAttribute(k,attrs[k]);return e;}
function fmtP(p){return p===null?'n/a':(+p.toPrecision(3)).toString()+(p>SIG?' (not significant)':'');}
const SIG=__SIG__;
function shades(b64){const s=atob(b64),a=new Uint8Array(2*s.length);
 for(let i=0;i<s.length;i++){const b=s.charCodeAt(i);a[2*i]=b>>4;a[2*i+1]=b&15;}return a;}
const shadeCache={};
function contexts(li,d){
 const c=data[li].ctx;if(!c)return null;
 if(!(li in shadeCache))shadeCache[li]=shades(c.shades);
 const sh=shadeCache[li],texts=tokens(c.tokens),win=c.before+1+c.after,box=el('div',null,{class:'ctx'});
 for(let r=0;r<c.top;r++){const k=d*c.top+r,i=c.centers[k];if(i<0)continue;const p=el('p');
  for(let o=0;o<win;o++){const lv=sh[k*win+o];if(lv===15)continue;const j=i-c.before+o;
   const sp=el('span',texts[j]);sp.style.background='rgba(214,39,40,'+(lv/14).toFixed(2)+')';
   if(j===i){sp.style.outline='1px solid #222';sp.title=String(c.values[k]);}p.appendChild(sp);}
  p.appendChild(document.createTextNode(' '));p.appendChild(el('small','('+c.values[k]+')'));box.appendChild(p);}
 return box;}
function show(li,d){
 const L=data[li],out=$('inv-pick');out.textContent='';
 if(!L||!(d>=0&&d<L.best.length)){out.appendChild(el('p','no such neuron'));return;}
 const b=L.best[d],name=L.names[String(d)];
 out.appendChild(el('h3',(L.layer||'layer')+' · neuron '+d+(name?' — '+name:'')));
 if(!b){out.appendChild(el('p','no admissible formula'));}
 else{const p=el('p');p.appendChild(el('code',L.formulas[b[0]]));
  p.appendChild(document.createTextNode(' · AUC '+b[1]+' · p (search) '+fmtP(b[2])+' · '+(100*b[3]).toFixed(1)+'% of samples'));
  out.appendChild(p);}
 const c=contexts(li,d);if(c){out.appendChild(el('h4','top activations'));out.appendChild(c);}
 $('inv-layer').value=String(li);$('inv-neuron').value=String(d);}
function table(div){
 const li=+div.dataset.layer,L=data[li],per=100;let page=0,rows=[];
 const filter=el('input',null,{placeholder:'formula contains…',size:'30'}),info=el('span'),
  prev=el('button','◀'),next=el('button','▶'),t=el('table');
 div.append(filter,' ',prev,next,' ',info,t);
 function refresh(){const q=filter.value;rows=[];L.best.forEach((b,d)=>{if(b&&(!q||L.formulas[b[0]].includes(q)))rows.push(d);});
  page=Math.min(page,Math.max(0,Math.ceil(rows.length/per)-1));draw();}
 function draw(){t.textContent='';const h=el('tr');
  for(const x of ['neuron','name','best formula','AUC','p (search)'])h.appendChild(el('th',x));t.appendChild(h);
  for(const d of rows.slice(page*per,(page+1)*per)){const b=L.best[d],tr=el('tr'),a=el('a',String(d),{href:'#pick='+li+':'+d});
   const td=el('td');td.appendChild(a);tr.appendChild(td);tr.appendChild(el('td',L.names[String(d)]||''));
   const f=el('td');f.appendChild(el('code',L.formulas[b[0]]));tr.appendChild(f);
   tr.appendChild(el('td',String(b[1])));tr.appendChild(el('td',fmtP(b[2])));t.appendChild(tr);}
  info.textContent=rows.length?('neurons '+(page*per+1)+'–'+Math.min(rows.length,(page+1)*per)+' of '+rows.length):'none';}
 filter.oninput=()=>{page=0;refresh();};prev.onclick=()=>{if(page>0){page--;draw();}};
 next.onclick=()=>{if((page+1)*per<rows.length){page++;draw();}};refresh();}
const sel=$('inv-layer');
data.forEach((L,i)=>sel.appendChild(el('option',L.layer||('layer '+i),{value:String(i)})));
$('inv-show').onclick=()=>{location.hash='pick='+sel.value+':'+$('inv-neuron').value;};
document.querySelectorAll('div.inv-table').forEach(table);
function fromHash(){const m=/^#pick=(\d+):(\d+)$/.exec(location.hash);if(m){show(+m[1],+m[2]);$('picker').scrollIntoView();}}
window.addEventListener('hashchange',fromHash);fromHash();
})();"""


def circuit_html(circuit) -> str:
    """A circuit (io/circuit.py) as nested lists: each unit with its label, AUC and mean, each contributor
    with a bar of its signed contribution (green: raises the unit, red: lowers it; bar lengths relative
    to the largest |contribution| among siblings) and how it was computed.

    Example:
        >>> circuit_html(circuit(model, x, "classifier.2:3", ["classifier.1"], concepts))
    """

    def bar(v: float, peak: float) -> str:
        w = 0 if peak == 0 else max(1, round(80 * abs(v) / peak))
        color = "#2a7" if v >= 0 else "#c33"
        return f'<svg width="82" height="10" role="img"><rect x="0" y="1" width="{w}" height="8" fill="{color}"/></svg>'

    def node(n, peak: float) -> str:
        e = n.label
        lab = (f"<code>{html.escape(str(e.formula))}</code> AUC {e.auc:.3f}, p (search) {_fmt_p_search(e)}"
               if e is not None else "no label")  # fmt: skip
        head = f"<b>{html.escape(n.name)}</b>: {lab}, mean {n.mean:.4g}"
        if n.contribution is not None:
            head = f"{bar(n.contribution, peak)} {n.contribution:+.4g} <small>({html.escape(n.method)})</small> " + head
        if n.baseline is not None:
            head += (f' <small title="the unit with the next layer zeroed, and what the contributions leave '
                     f'unexplained">[zeroed {n.baseline:.4g}, unexplained {n.remainder:+.3g}]</small>')  # fmt: skip
        kids = ""
        if n.children:
            top = max(abs(c.contribution) for c in n.children)
            kids = "<ul>" + "".join(node(c, top) for c in n.children) + "</ul>"
        return f"<li>{head}{kids}</li>"

    edges = ", ".join(f"{html.escape(b)} ← {html.escape(a)}: {m}" for (b, a), m in circuit.methods.items())
    return (
        f"<p>Contributions: the mean over {circuit.n_inputs:,} inputs of gradient × activation, summed over a "
        "channel's positions; <i>exact</i> where the path is linear (the same gradient for every input: weight × "
        f"mean activation, summing to the unit's mean minus its bias). Edges: {edges}.</p>"
        '<ul class="tree">' + "".join(node(r, 0) for r in circuit.roots) + "</ul>"
    )


_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
ul.tree li{margin:.2em 0}ul.tree ul{border-left:1px dotted #999;padding-left:1.2em}
code{font-size:90%}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
section.neuron{border-top:1px solid #ddd;padding:.5em 0}.words{font-size:120%;font-weight:bold}
img.px{image-rendering:pixelated;border:1px solid #999;margin:1px}ul.desc{font-size:90%;color:#555}
span.ns{color:#b00;font-size:85%}p.sig{font-size:90%;color:#444}
div.ctx p{font-family:monospace;white-space:pre-wrap;margin:.2em 0}#inv-pick{border:1px solid #ddd;padding:0 .5em}
div.ctx span.c{outline:1px solid #222}div.ctx span.u{text-decoration:underline}""" + "".join(
    f"div.ctx span.s{k}{{background:rgba(214,39,40,{k / 20:.2f})}}" for k in range(1, 21)
)


def write_report(
    path,
    layers: list[LayerReport],
    title: str = "invert_fast report",
    intro: str = "",
    family: Callable[[str], str] | None = None,
    families: Sequence[str] = (),
    circuits: Sequence = (),
    simplicity: Sequence = (),
    glance: bool = False,
    held_out: Mapping[str, float] | None = None,
) -> Path:
    """Write the report as one self-contained HTML file (atomically).

    Args:
        path: output .html path.
        layers: one LayerReport per layer.
        title: page title; intro: an HTML paragraph shown first (e.g. model, data, a validation table).
        family: optional concept name -> family (e.g. concepts.tokens.concept_family): a plot of the families
            of every layer's best labels comes first; families: their order in the plot.
        circuits: io.circuit.Circuit trees, drawn first (circuit_html).
        simplicity: core.simplicity.SimplicityPrecision per layer: the simplicity-precision plot and
            tables (simplicity_html), before the layers.
        glance: the layers at a glance first (svg_layer_summary: median AUC, held_out {layer: median
            held-out AUC} where computed, share significant).

    Example:
        >>> write_report("out/report.html", [LayerReport(res, acts, concepts)], family=concept_family)
    """
    static = sum(len(x.labels) for x in layers) <= STATIC_TABLE_LIMIT
    body = "".join(_layer_section(layer, i, static) for i, layer in enumerate(layers))
    # The neuron picker's data: one token table per distinct corpus, one JSON element per layer.
    token_tables: list[Sequence[str]] = []
    scripts = []
    for i, layer in enumerate(layers):
        t = None
        if layer.contexts is not None and layer.token_texts is not None:
            t = next((j for j, x in enumerate(token_tables) if x is layer.token_texts), None)
            if t is None:
                t = len(token_tables)
                token_tables.append(layer.token_texts)
                scripts.append(_json_script([str(x) for x in layer.token_texts], f'id="inv-tokens-{t}"'))
        scripts.append(_json_script(layer_data(layer, t), f'class="inv-layer" data-index="{i}"'))
    body = _PICKER + body
    if family is not None:
        body = (
            "<h2>Concept families of the best labels, per layer</h2><p>Each neuron's best label counts once, "
            "split evenly over the families of its positive atoms.</p>"
            + svg_family_plot(layers, family, families)
            + body
        )
    if glance:
        body = (
            "<h2>The layers at a glance</h2><p>Per layer: the median AUC of the best labels (solid), the median "
            "held-out AUC where it was computed (dashed: labels found on one half of the data, scored on the other), "
            "and the share of best labels significant after the search (bars).</p>"
            + svg_layer_summary(layers, held_out)
            + body
        )
    if simplicity:
        body = '<h2 id="simplicity">Simplicity against precision</h2>' + simplicity_html(simplicity) + body
    if circuits:
        body = '<h2 id="circuits">Circuits</h2>' + "".join(circuit_html(c) for c in circuits) + body
    nav = " · ".join(
        f'<a href="#layer-{html.escape(x.labels.layer)}">{html.escape(x.labels.layer or "layer")}</a>' for x in layers
    )
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{intro}<p>{nav}</p>{body}"
        + "".join(scripts)
        + f"<script>{_SCRIPT.replace('__SIG__', repr(SIGNIFICANCE))}</script></body></html>"
    )
    path = Path(path)
    with atomic_write(path) as f:
        f.write(page)
    return path


def comparison_html(cmp, top: int = 30) -> str:
    """An HTML section of a dissection.compare.Comparison: summary, agreement, the `top` units by NetDissect
    IoU, and all units.

    Example:
    >>> comparison_html(compare(maps, masks))
    """
    fmt = lambda v: "n/a" if v != v else f"{v:.4f}"  # noqa: E731  (NaN -> n/a)

    def row(r):
        return (
            f"<tr><td>{r['unit']}</td><td><code>{html.escape(r['invert_label'])}</code></td><td>{fmt(r['invert_auc'])}</td>"
            f"<td>{r['invert_p_value']:.2g}</td><td>{fmt(r['invert_label_iou'])}</td>"
            f"<td><code>{html.escape(r['netdissect_label'])}</code></td><td>{fmt(r['netdissect_iou'])}</td>"
            f"<td>{'yes' if r['netdissect_detector'] else ''}</td><td>{fmt(r['netdissect_label_auc'])}</td>"
            f"<td>{'yes' if r['agree'] else ''}</td></tr>"
        )

    head = (
        "<tr><th>unit</th><th>INVERT label</th><th>AUC</th><th>p</th><th>its IoU</th><th>NetDissect label</th>"
        "<th>IoU</th><th>detector</th><th>its AUC</th><th>agree</th></tr>"
    )
    best = sorted(cmp.rows, key=lambda r: -r["netdissect_iou"])[:top]
    p = cmp.params
    counts = cmp.unique_detectors()
    chart = svg_grouped_bars(
        [(c, [a, b]) for c, (a, b) in counts.items()],
        [
            (f"NetDissect (IoU {'>=' if cmp.dissection.compat == 'netdissect-lite' else '>'} "
             f"{cmp.dissection.iou_threshold})", "#1f77b4"),
            (f"INVERT (AUC >= {INVERT_DETECTOR_AUC})", "#ff7f0e"),
        ],
    )  # fmt: skip
    return (
        f"<h2>INVERT vs Network Dissection{' (compositional)' if cmp.compositional else ''}</h2>"
        f"<p>{html.escape(cmp.summary())}.</p>"
        f"<p>Formula length {p.get('length')}, beam {p.get('beam')}, NetDissect quantile {p.get('quantile')}. "
        f"INVERT: spatial-mean activations, image-level labels (an image has a concept when it holds any of its pixels). "
        f"Not offered to INVERT (present in every image): {html.escape(', '.join(cmp.excluded) or 'none')}. "
        f"<i>its IoU</i>: INVERT's formula on the pixel masks vs the unit's NetDissect masks; <i>its AUC</i>: "
        f"NetDissect's label on the image-level labels (n/a: no image-level contrast).</p>"
        "<h4>Unique detectors per category</h4><p>Distinct concepts that some unit detects, per category "
        "(NetDissect's summary picture; for INVERT, units whose best label has AUC at or above the cut).</p>"
        f"{chart}"
        f"<h4>Top {len(best)} units by NetDissect IoU</h4><table>{head}{''.join(row(r) for r in best)}</table>"
        f"<details><summary>All {len(cmp.rows)} units</summary><table>{head}{''.join(row(r) for r in cmp.rows)}</table></details>"
    )
