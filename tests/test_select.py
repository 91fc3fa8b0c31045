"""The shared selection's contracts: canonical formula texts from extension histories equal Formula's,
and select_labels orders exactly (AUC, length, text) with one label per mask."""

import itertools
import random

import torch

import invert_fast as inv
from invert_fast import ops

NAMES = ["a", "ab", "a b", "b", "a!", "Zeta", "_x", "c", "é", "a)", "#", "z!z", "日本"]


def atom_table():
    atoms = [inv.Formula.atom(s) for s in NAMES] + [inv.Formula.atom(s, True) for s in NAMES]
    texts = [str(a).encode() for a in atoms]
    blob = torch.tensor(list(b"".join(texts)), dtype=torch.uint8)
    off = torch.tensor([0, *itertools.accumulate(len(t) for t in texts)])
    return atoms, blob, off


def random_histories(count, seed=0, longest=6):
    atoms, _, _ = atom_table()
    k2, rng = len(atoms), random.Random(seed)
    rows, formulas = [], []
    for _ in range(count):
        a0 = rng.randrange(k2)
        h, f = [a0], atoms[a0]
        for _ in range(rng.randint(0, longest - 1)):
            op, a = rng.randint(1, 2), rng.randrange(k2)
            if rng.random() < 0.25:
                a = rng.choice(h) % k2  # repeated operands
            h.append(op * k2 + a)
            f = f & atoms[a] if op == 1 else f | atoms[a]
        rows.append(h + [-1] * (longest - len(h)))
        formulas.append(f)
    return torch.tensor(rows), formulas


def test_canonical_texts_and_lengths_equal_formula():
    _, blob, off = atom_table()
    hist, formulas = random_histories(20000)
    texts, lengths = ops.formula_texts(hist, blob, off)
    assert texts == [str(f) for f in formulas]
    assert lengths.tolist() == [f.length for f in formulas]
    # select_labels computes the same lengths without building texts.
    n = 100
    _, lens = ops.select_labels(
        torch.arange(2000), torch.full((2000,), 60), torch.full((2000,), 5), hist[:2000], torch.zeros(2000, 0, dtype=torch.long),
        blob, off, n, 1.0, 1, False, 2000,
    )  # fmt: skip
    assert lens[:, 0].tolist() == [f.length for f in formulas[:2000]]


def test_select_labels_exact_order_and_distinct_masks():
    _, blob, off = atom_table()
    hist, formulas = random_histories(60, seed=3, longest=3)
    g = torch.Generator().manual_seed(5)
    n = 40
    # Few (rank sum, size) pairs, so scores tie often; equal masks only among equal pairs (as in a search),
    # two masks per pair (equal scores, different masks).
    pool_p = torch.randint(1, n, (8,), generator=g)
    pool_s = pool_p * (pool_p + 1) + (torch.rand(8, generator=g) * 2 * pool_p * (n - pool_p)).long()
    # A formula's mask (and so its sums) depends on the formula only: draw them per text.
    mask_of = {}
    for f in formulas:
        mask_of.setdefault(str(f), int(torch.randint(0, 16, (1,), generator=g)))
    mask = torch.tensor([mask_of[str(f)] for f in formulas])
    which = mask // 2
    p, s2 = pool_p[which], pool_s[which]
    words = mask.unsqueeze(1)
    neuron = torch.randint(0, 4, (60,), generator=g)
    for sign in (1.0, -1.0):
        for distinct in (True, False):
            win, _ = ops.select_labels(neuron, s2, p, hist, words, blob, off, n, sign, 5, distinct, 4)
            for d in range(4):
                idx = [i for i in range(60) if neuron[i] == d]
                from fractions import Fraction

                key = lambda i, sign=sign: (  # noqa: E731
                    -sign * Fraction(int(s2[i] - p[i] * (p[i] + 1)), int(2 * p[i] * (n - p[i]))),
                    formulas[i].length,
                    str(formulas[i]),
                )
                seen, want = set(), []
                for i in sorted(idx, key=key):
                    tag = int(words[i]) if distinct else str(formulas[i])
                    if tag not in seen:
                        seen.add(tag)
                        want.append(key(i))
                got = [key(i) for i in win[d].tolist() if i >= 0]
                assert got == want[:5], (sign, distinct, d)


def test_select_step_orders_penalized_scores_exactly():
    # Two beam formulas of one neuron, "a" (1 atom) and "a & b" (2 atoms), scored by IoU = S / (T + P - S)
    # minus penalty * (atoms - 1): near ties, where twice-rounded floats can disagree with the exact order
    # (and exact ties, decided by length), against Python fractions. T up to 2^40 puts the rationals'
    # cross products past 64 bits and the penalized comparison past 128.
    from fractions import Fraction

    texts = [b"a", b"b", b"~a", b"~b"]
    blob = torch.tensor(list(b"".join(texts)), dtype=torch.uint8)
    off = torch.tensor([0, 1, 2, 4, 6])
    hist = torch.tensor([[[0, -1], [0, 1 * 4 + 1]]])  # beam 0: a; beam 1: a & b
    words = torch.tensor([[[1], [2]]])
    cols = torch.tensor([2 * 4 * 2 + 0, 2 * 4 * 2 + 1])  # the two beam columns of a pool of 2 beams, K = 2
    rng = random.Random(5)
    seen = {-1: 0, 0: 0, 1: 0}
    # Exact ties first: 5 / 10 against 9 / 12 - 1/4, and 2^39 / 2^40 against 3 / 4 - 1/4 with T = 2^40
    # (S = 3 (T + P) / 7 for P = 2^40 + 3).
    big = 2**40
    ties = [(0.25, 10, 5, 5, 9, 11), (0.25, big, big // 2, big // 2, 3 * (2 * big + 3) // 7, big + 3)]
    for trial in range(400):
        if trial < len(ties):
            penalty, t, s_a, p_a, s_b, p_b = ties[trial]
        else:
            penalty = rng.choice([0.1, 0.01, 1 / 3, 0.25, 0.002, 2.0**-30])
            t = rng.choice([10, 1000, 2**40])
            p_a = rng.randint(1, t)
            s_a = rng.randint(0, min(p_a, t))
            want = Fraction(s_a, t + p_a - s_a) + Fraction(penalty)  # b's IoU near a's plus the penalty
            p_b = rng.randint(1, t)
            # the s_b whose IoU s / (t + p_b - s) is closest to want: s = want (t + p_b) / (1 + want)
            s_b = min(p_b, t, max(0, round(want * (t + p_b) / (1 + want)) + rng.choice([-1, 0, 0, 1])))
        n = 2 * t + 2
        win, _ = ops.select_step(
            torch.tensor([0, 0]), cols, torch.tensor([s_a, s_b]), torch.tensor([p_a, p_b]), hist,
            torch.tensor([[1, 2]]), words, torch.tensor([[1], [2], [0], [0]]), blob, off, 2, n, 1.0, 1, False, 1,
            torch.tensor([t]), 1, penalty,
        )  # fmt: skip
        fa = Fraction(s_a, t + p_a - s_a)
        fb = Fraction(s_b, max(1, t + p_b - s_b)) - Fraction(penalty)
        cmp = (fa > fb) - (fa < fb)
        seen[cmp] += 1
        assert int(win[0, 0]) == (0 if cmp >= 0 else 1), (trial, s_a, p_a, s_b, p_b, t, penalty)  # tie: shorter
    assert min(seen.values()) > 0, seen
