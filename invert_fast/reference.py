"""Slow, obviously correct definitions that the fast paths are tested against."""

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
    activations, labels, names, L, B, limit_search=None, min_fraction=0.0, max_fraction=0.5, mode="positive"
):
    """INVERT's beam search, written out plainly on Python lists, one neuron at a time.

    Args:
        activations: [N][D] numbers; labels: [N][K] 0/1; names: K concept names.

    Returns:
        per neuron, the final beam as a list of (formula text, length, auc), best first.
    """
    from .formula import Formula

    n = len(activations)
    cols = list(zip(*activations, strict=True))
    masks = [tuple(bool(v) for v in m) for m in zip(*labels, strict=True)]
    atoms = [(Formula.atom(s), m) for s, m in zip(names, masks, strict=True)]
    atoms += [(Formula.atom(s, True), tuple(not v for v in m)) for s, m in zip(names, masks, strict=True)]

    def admissible(m):
        p = sum(m)
        return 0 < p < n and min_fraction <= p / n <= max_fraction

    out = []
    for col in cols:

        def auc(m, col=col):
            a = auroc_pairs(col, m)
            return float("nan") if a is None else float(a)

        def order(item):
            f, _, a = item
            return (-a if mode == "positive" else a, f.length, str(f))

        scored = [(f, m, auc(m)) for f, m in atoms]
        beam = sorted((t for t in scored if admissible(t[1])), key=order)[:B]
        defined = [t for t in scored if t[2] == t[2]]
        ext = sorted(defined, key=lambda t: (-2 * abs(t[2] - 0.5), str(t[0])))
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
                            pool[f] = (f, m, auc(m))
            beam = sorted(pool.values(), key=order)[:B]
        out.append([(str(f), f.length, a) for f, _, a in beam])
    return out
