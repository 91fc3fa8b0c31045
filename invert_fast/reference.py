"""Slow, obviously correct definitions that the fast paths are tested against."""

import math
from fractions import Fraction


def doubled_midranks(values):
    """2 * mid-rank of each value (ranks 1..N, ties share their mean rank), as Python ints."""
    return [sum(2 if u < v else 1 if u == v else 0 for u in values) + 1 for v in values]


def auroc_pairs(values, mask):
    """AUROC as a Fraction by counting pairs: P(inside > outside) + 1/2 P(equal); None if undefined."""
    pos = [v for v, m in zip(values, mask, strict=True) if m]
    neg = [v for v, m in zip(values, mask, strict=True) if not m]
    if not pos or not neg:
        return None
    wins = sum(Fraction(1) if p > q else Fraction(1, 2) if p == q else 0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def auroc_reference(activations, labels):
    """[D][K] float AUROC (NaN where undefined) of columns of activations [N][D] vs labels [N][K]."""
    cols = list(zip(*activations, strict=True))
    masks = list(zip(*labels, strict=True))
    return [[float(a) if (a := auroc_pairs(c, m)) is not None else float("nan") for m in masks] for c in cols]


def explain_reference(
    activations,
    labels,
    names,
    L,
    B,
    limit_search=None,
    min_fraction=0.0,
    max_fraction=0.5,
    mode="positive",
    distinct=True,
    objective="auroc",
    alpha=0.005,
):
    """INVERT's beam search, written out plainly on Python lists, one neuron at a time, exactly.

    With objective "iou", "f1" or "auprc" the score is the overlap with the neuron's top samples T (the
    ceil(alpha N) largest values and every value tied with the last of them, or the values > 0 for
    alpha "support"), as a Fraction; with "correlation" or "cosine", value_score's float of the values
    themselves; limit_search must then be None (it ranks atoms by AUC).

    Every comparison is exact (AUCs and differentiabilities as Fractions). Order of formulas: AUC
    (descending in "positive" mode, ascending in "negative"), then length, then text. Extension atoms
    (limit_search): largest differentiability 2|AUC - 1/2| first, ties by AUC in the mode's direction,
    then text. With distinct, formulas with equal sample masks count once (in every beam and in the
    result): the kept one is the first in that order, i.e. the shortest, then the first in text order.

    Args:
        activations: [N][D] numbers; labels: [N][K] 0/1; names: K concept names.

    Returns:
        per neuron, the final beam as a list of (formula text, length, score), best first (score: the
        AUC, or the objective's value).
    """
    from .core.formula import Formula

    n = len(activations)
    cols = list(zip(*activations, strict=True))
    masks = [tuple(bool(v) for v in m) for m in zip(*labels, strict=True)]
    atoms = [(Formula.atom(s), m) for s, m in zip(names, masks, strict=True)]
    atoms += [(Formula.atom(s, True), tuple(not v for v in m)) for s, m in zip(names, masks, strict=True)]
    sign = 1 if mode == "positive" else -1

    def admissible(m):
        p = sum(m)
        return 0 < p < n and min_fraction <= p / n <= max_fraction

    def order(item):
        f, _, a = item
        return (-sign * a, f.length, str(f))

    def best(items):
        """The first B of items in order, one per mask when distinct."""
        out, seen = [], set()
        for item in sorted(items, key=order):
            if distinct and item[1] in seen:
                continue
            seen.add(item[1])
            out.append(item)
        return out[:B]

    out = []
    for col in cols:
        score = objective_score(col, objective, alpha)
        scored = [(f, m, a) for f, m in atoms if (a := score(col, m)) is not None]
        beam = best(t for t in scored if admissible(t[1]))
        ext = sorted(scored, key=lambda t: (-abs(2 * t[2] - 1), -sign * t[2], str(t[0])))
        ext = ext if limit_search is None else ext[:limit_search]
        for _ in range(2, L + 1):
            pool = {f: (f, m, a) for f, m, a in beam}
            for fb, mb, _ab in beam:
                for fa, ma, _aa in ext:
                    for f, m in (
                        (fb & fa, tuple(x and y for x, y in zip(mb, ma, strict=True))),
                        (fb | fa, tuple(x or y for x, y in zip(mb, ma, strict=True))),
                    ):
                        if admissible(m) and m != mb and f not in pool:
                            pool[f] = (f, m, score(col, m))
            beam = best(pool.values())
        out.append([(str(f), f.length, float(a)) for f, _, a in beam])
    return out


def objective_score(values, objective, alpha):
    """score(values, mask) of one neuron by the objective, plainly: auroc_pairs, overlap_score (iou, f1,
    auprc) or value_score (correlation, cosine)."""
    if objective == "auroc":
        return auroc_pairs
    if objective in ("correlation", "cosine"):
        return value_score(values, objective)
    return overlap_score(values, objective, alpha)


def value_score(values, objective):
    """score(values, mask) -> Pearson's r of the values and the 0/1 mask, or their cosine similarity
    sum_M a / (|a| sqrt|M|), in Python floats from the values themselves (not the search's scaled
    integers); None for an empty or full mask, or constant values."""
    n = len(values)
    mean = math.fsum(values) / n
    dev = [v - mean for v in values]
    norm_c = math.sqrt(math.fsum(v * v for v in dev))
    norm = math.sqrt(math.fsum(v * v for v in values))

    def score(_values, mask):
        p = sum(mask)
        if p in (0, n) or (norm_c if objective == "correlation" else norm) == 0:
            return None
        if objective == "cosine":
            return math.fsum(v for v, m in zip(values, mask, strict=True) if m) / (norm * math.sqrt(p))
        # r = sum (a - mean)(m - p / n) / (|a - mean| |m - p / n|) = sum_M (a - mean) / (|a - mean| sqrt(p (n - p) / n))
        inside = math.fsum(v for v, m in zip(dev, mask, strict=True) if m)
        return inside / (norm_c * math.sqrt(p * (n - p) / n))

    return score


def top_reference(values, alpha):
    """[N] bools: the top samples T of one neuron, plainly: the ceil(alpha N) largest values and every value
    tied with the last of them (alpha N as one float64 product, as the fast path), or the values > 0."""
    if alpha == "support":
        return [v > 0 for v in values]
    m = min(len(values), max(1, math.ceil(alpha * len(values))))
    cut = sorted(values, reverse=True)[m - 1]
    return [v >= cut for v in values]


def overlap_score(values, objective, alpha):
    """score(values, mask) -> the Fraction IoU, F1 or AUPRC of mask against the top samples of values
    (None for an empty or full mask), written out plainly."""
    n = len(values)
    top = top_reference(values, alpha)

    def score(_values, mask):
        p = sum(mask)
        if p in (0, n):
            return None
        i = sum(1 for t, b in zip(top, mask, strict=True) if t and b)
        t = sum(top)
        if objective == "auprc":  # P R + (1 - R) T / N
            return Fraction(i, p) * Fraction(i, t) + (1 - Fraction(i, t)) * Fraction(t, n) if t else Fraction(0)
        return Fraction(i, t + p - i) if objective == "iou" else Fraction(2 * i, t + p)

    return score


def metrics_reference(values, mask, alpha):
    """The five label metrics of core/metrics.py, written out plainly: IoU, F1 and AUPRC as Fractions of
    counts, correlation and cosine from exact Fraction sums of the values (a float square root last).

    Args:
        values: [N] numbers (one neuron); mask: [N] bools; alpha: T's share or "support".
    """
    n = len(values)
    top = top_reference(values, alpha)
    s = sum(1 for t, b in zip(top, mask, strict=True) if t and b)
    p, t = sum(mask), sum(top)
    union = t + p - s
    out = {"iou": Fraction(s, union) if union else Fraction(0), "f1": Fraction(2 * s, t + p) if t + p else Fraction(0)}
    # scikit-learn's average precision of the binary score: P R + (1 - R) T / N
    out["auprc"] = Fraction(s, p) * Fraction(s, t) + (1 - Fraction(s, t)) * Fraction(t, n) if t and p else None
    a = [Fraction(v) for v in values]
    sm = sum((v for v, b in zip(a, mask, strict=True) if b), Fraction(0))
    mean = sum(a, Fraction(0)) / n
    ss = sum(((v - mean) ** 2 for v in a), Fraction(0))
    den = ss * p * (n - p) / n
    out["correlation"] = float(sm - p * mean) / math.sqrt(den) if den else None
    norm2 = sum((v * v for v in a), Fraction(0))
    out["cosine"] = float(sm) / math.sqrt(norm2 * p) if norm2 and p else None
    return out


def exact_reference(
    activations,
    labels,
    names,
    L,
    B,
    min_fraction=0.0,
    max_fraction=0.5,
    mode="positive",
    objective="auroc",
    alpha=0.005,
):
    """Brute force: every formula ((a1 op a2) op a3) ... of at most L atoms (c and ~c, op AND / OR),
    one neuron at a time; the B best distinct admissible masks by exact AUC (mode direction), each
    represented by its shortest formula, then the first in text order. Other objectives score by
    objective_score (overlap_score with alpha, or value_score).

    Args:
        activations: [N][D] numbers; labels: [N][K] 0/1; names: K concept names.

    Returns:
        per neuron, a list of (formula text, length, score), best first.
    """
    from .core.formula import Formula

    n = len(activations)
    cols = list(zip(*activations, strict=True))
    masks = [tuple(bool(v) for v in m) for m in zip(*labels, strict=True)]
    atoms = [(Formula.atom(s), m) for s, m in zip(names, masks, strict=True)]
    atoms += [(Formula.atom(s, True), tuple(not v for v in m)) for s, m in zip(names, masks, strict=True)]
    formulas = {f: m for f, m in atoms}
    layer = dict(formulas)
    for _ in range(2, L + 1):
        grown = {}
        for fb, mb in layer.items():
            for fa, ma in atoms:
                grown.setdefault(fb & fa, tuple(x and y for x, y in zip(mb, ma, strict=True)))
                grown.setdefault(fb | fa, tuple(x or y for x, y in zip(mb, ma, strict=True)))
        formulas.update(grown)
        layer = grown
    rep = {}  # mask -> its shortest, first-in-text formula
    for f, m in formulas.items():
        p = sum(m)
        if not (0 < p < n and min_fraction <= p / n <= max_fraction):
            continue
        if m not in rep or (f.length, str(f)) < (rep[m].length, str(rep[m])):
            rep[m] = f
    sign = 1 if mode == "positive" else -1
    out = []
    for col in cols:
        score = objective_score(col, objective, alpha)
        scored = [(-sign * score(col, m), f.length, str(f)) for m, f in rep.items()]
        out.append([(t, length, float(-sign * a)) for a, length, t in sorted(scored)[:B]])
    return out


def iou_counts_reference(unit_masks, concept_masks):
    """(intersection, union) of two pixel sets given as Python ints (bit i = pixel i over all images)."""
    return (unit_masks & concept_masks).bit_count(), (unit_masks | concept_masks).bit_count()


def compositional_reference(unit_masks, concept_masks, names, n_pixels, length, beam, length_penalty=0.0):
    """Mu & Andreas' beam search, written out plainly on Python-int bit sets.

    Args:
        unit_masks: [D] ints, bit i set where pixel i (of all images, concatenated) is in the unit's mask.
        concept_masks: [K] ints likewise; names: K concept names; n_pixels: total pixels (for NOT).

    Returns:
        per unit, the final beam as a list of (formula text, intersection, union), best first.
    """
    from .core.formula import Formula

    full = (1 << n_pixels) - 1
    atoms = [(Formula.atom(s), m) for s, m in zip(names, concept_masks, strict=True)]
    out = []
    for unit in unit_masks:

        def entry(f, m, unit=unit):
            i, u = iou_counts_reference(unit, m)
            score = (Fraction(i, u) if u else Fraction(0)) - Fraction(length_penalty) * (f.length - 1)
            return (-score, f.length, str(f)), f, m, i, u

        def best(entries):
            unique = {e[1]: e for e in entries}
            return sorted(unique.values())[:beam]

        beams = best(entry(f, m) for f, m in atoms)
        for _ in range(2, length + 1):
            pool = list(beams)
            for _key, fb, mb, _i, _u in beams:
                for fa, ma in atoms:
                    pool.append(entry(fb | fa, mb | ma))
                    pool.append(entry(fb & fa, mb & ma))
                    pool.append(entry(fb & ~fa, mb & (full & ~ma)))
            beams = best(pool)
        out.append([(str(f), i, u) for _k, f, _m, i, u in beams])
    return out
