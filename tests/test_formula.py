"""Formula: canonical form, text, parsing, evaluation as bit masks; inv.score against masks."""

import pytest
import torch

import invert_fast as inv
from invert_fast import Formula

from .helpers import random_labels

a, b, c = (Formula.atom(n) for n in "abc")


def test_canonical_form():
    assert (a & b) == (b & a) and hash(a & b) == hash(b & a)
    assert ((a & b) & c) == (a & (b & c)) == (c & b & a)
    assert (a & a) == a and ((a | b) | a) == (a | b)
    assert (a & b) != (a | b)
    assert str((c | (b & a)) & ~a) == "((a & b) | c) & ~a"
    assert str(~(a & ~b)) == "b | ~a"
    assert ((a & b) | c).length == 3 and (~a).length == 1


def test_text_quotes_names_that_are_not_plain():
    f = Formula.atom("ankle boot") | ~Formula.atom('say "hi"') | Formula.atom("x&y")
    assert str(f) == '"ankle boot" | "x&y" | ~"say \\"hi\\""'
    assert Formula.parse(str(f)) == f


@pytest.mark.parametrize(
    "text",
    ["a", "~a", "a & b | c", "a | b & c", "~(a | b) & c", "((a))", '"a b" | ~"c"', "a & ~~b"],
)
def test_parse_roundtrip_and_precedence(text):
    f = Formula.parse(text)
    assert Formula.parse(str(f)) == f
    assert Formula.parse("a & b | c") == ((a & b) | c)
    assert Formula.parse("a | b & c") == (a | (b & c))
    assert Formula.parse("a & ~~b") == (a & b)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "expected a formula, got an empty string"),
        ("a &", "expected a concept name, got 'the end'"),
        ("(a | b", r"missing '\)'"),
        ("a b", "unexpected 'b' after a complete formula"),
        ("a | zz", "unknown concept 'zz'"),
        ('"open', "cannot read it at position 0"),
    ],
)
def test_parse_errors(text, match):
    with pytest.raises(ValueError, match=match):
        Formula.parse(text, names=["a", "b", "c"])


def test_masks_and_score_match_direct_auroc():
    y = random_labels(130, 3, density=0.4, seed=3)
    cs = inv.ConceptSet(y, ["a", "b", "c"])
    A, B, C = y.unbind(1)
    for text, mask in [("a & ~b", A & ~B), ("a | (b & c)", A | (B & C)), ("~(a | c)", ~(A | C)), ("b", B)]:
        assert torch.equal(Formula.parse(text).mask(cs), mask)
    x = torch.randn(130, 4)
    got = inv.score(x, cs, ["a & ~b", Formula.parse("a | (b & c)"), "~(a | c)"])
    want = inv.auroc(x, torch.stack([A & ~B, A | (B & C), ~(A | C)], 1))
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match="unknown concept 'q'"):
        inv.score(x, cs, ["a | q"])
    with pytest.raises(TypeError, match="expected a sequence of formulas"):
        inv.score(x, cs, "a | b")


def _alternating(depth: int) -> str:
    """a0 & (a1 | (a2 & (a3 | ...))): every level a real operator change, so nothing flattens."""
    text = f"a{depth}"
    for i in reversed(range(depth)):
        text = f"a{i} {'&|'[i % 2]} ({text})"
    return text


@pytest.mark.parametrize("depth", [330, 999])
def test_deep_nesting_parses_evaluates_and_negates_without_recursion(depth):
    text = _alternating(depth)
    f = Formula.parse(text)
    assert f.length == depth + 1 and len(f.concepts()) == depth + 1
    assert Formula.parse(str(f)) == f
    g = ~~f
    assert g == f
    # Evaluate on Python int bit sets: a_i holds sample i only, so the value is checkable by hand.
    from invert_fast.apps.report import formula_in_words

    assert formula_in_words(f).count("(") == depth - 1  # the innermost operand is an atom
    value = f.evaluate(lambda name, neg: (1 << int(name[1:])) ^ (((1 << (depth + 1)) - 1) if neg else 0))
    assert value & 1 == 0  # a0 & (...): sample 0 is in a0 but in none of the deeper operands' AND
    assert Formula.parse("~" * 1001 + "(" + text + ")") == ~f
    with pytest.raises(ValueError, match="parentheses nest deeper than 1000 levels"):
        Formula.parse("(" * 1002 + "a" + ")" * 1002)


def test_long_chains_parse_in_linear_time():
    import time

    t = time.perf_counter()
    f = Formula.parse(" | ".join(f"c{i}" for i in range(20_000)))
    g = Formula.parse(" & ".join(f"~c{i}" for i in range(20_000)))
    elapsed = time.perf_counter() - t
    assert f.length == g.length == 20_000 and ~f == g
    assert elapsed < 10, f"two 20k-atom chains took {elapsed:.1f} s"  # seconds, not minutes: not quadratic


@pytest.mark.parametrize(
    "text, match",
    [
        ('"bad \\q"', r"cannot read the quoted name at position 0: Invalid \\escape"),
        ("a | (b c)", r"missing '\)' before 'c'"),
        ("a )", r"unexpected '\)' after a complete formula"),
        ("a & |", "expected a concept name, got '|'"),
        (" | ".join(["a"] * 50) + " |", r"expected a concept name, got 'the end'"),
    ],
)
def test_more_parse_errors_are_one_line(text, match):
    with pytest.raises(ValueError, match=match) as e:
        Formula.parse(text)
    assert "\n" not in str(e.value) and len(str(e.value)) < 200


def test_score_each_is_the_diagonal_of_score_and_a_brute_force():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=g).round(decimals=1)  # many ties: mid-ranks matter
    cs = inv.ConceptSet(torch.rand(500, 4, generator=g) < 0.3, ["a", "b", "c", "d"])
    formulas = ["a", "b & ~c", None, "c | d", "d", "a & b & c & d & ~a"]  # None: no label; the last mask is empty
    for memory in (500 * 13, 500 * 13 * 2, 2**28):  # one neuron per chunk, two, all
        got = inv.score_each(x, cs, formulas, max_memory=memory)
        full = inv.score(x, cs, [f for f in formulas if f])
        want = torch.tensor([full[d, j].item() for j, d in enumerate([0, 1, 3, 4, 5])], dtype=torch.float64)
        assert torch.equal(got[[0, 1, 3, 4]], want[:4]) and got[[2, 5]].isnan().all()  # exact rationals: bit for bit
    for d, f in [(0, "a"), (3, "c | d")]:
        assert got[d].item() == pytest.approx(roc_auc_score(Formula.parse(f).mask(cs).numpy(), x[:, d]), abs=1e-15)
    with pytest.raises(ValueError, match=r"formulas: expected one formula \(or None\) per neuron \(6\), got 2"):
        inv.score_each(x, cs, ["a", "b"])


def test_positive_concepts_are_the_unnegated_atoms():
    f = Formula.parse("sneaker | (sandal & ~boot) | ~(a & b)")  # ~(a & b) becomes ~a | ~b
    assert f.positive_concepts() == {"sneaker", "sandal"} and f.concepts() == {"sneaker", "sandal", "boot", "a", "b"}
    assert Formula.parse("~x & ~y").positive_concepts() == set()
