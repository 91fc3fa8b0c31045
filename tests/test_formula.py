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
