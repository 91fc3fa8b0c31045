"""Formulas of concepts: atoms (a concept or its negation) joined by AND and OR.

A Formula is kept in a canonical form: AND/OR chains are flattened (associativity), operands are
a set (commutativity, repeated operands) ordered by their text, and NOT is pushed down to the atoms
(De Morgan). Equivalent formulas up to those laws are therefore equal and hash alike.

Text form is Python operator syntax: `~` NOT, `&` AND, `|` OR, parentheses, concept names; names
that are not plain words are written as JSON strings, e.g. `sneaker | ("ankle boot" & ~sandal)`.
"""

from __future__ import annotations

import bisect
import json
import re

import torch

_SEP = {"and": " & ", "or": " | "}
_PLAIN_NAME = re.compile(r"[^\s~&|()\"']+\Z")
_TOKEN = re.compile(r"\s*(?:(?P<op>[~&|()])|(?P<quoted>\"(?:[^\"\\]|\\.)*\")|(?P<name>[^\s~&|()\"']+))")


class Formula:
    """An immutable formula in canonical form. Build with Formula.atom, ~, &, | or Formula.parse.

    Attributes:
        op: "atom", "and" or "or".
        name, negated: the concept and its sign (atoms only).
        args: operands in canonical order (and/or only).
        length: number of atom occurrences.

    Example:
        >>> a, b, c = (Formula.atom(n) for n in "abc")
        >>> str((b & a) | ~c), ((a & b) & a) == (b & a), ((a & b) | ~c).length
        ('(a & b) | ~c', True, 3)
    """

    __slots__ = ("op", "name", "negated", "args", "length", "_text", "_hash", "_disp")

    def __init__(self, op: str, name: str | None = None, negated: bool = False, args: tuple[Formula, ...] = ()):
        self.op, self.name, self.negated, self.args = op, name, negated, args
        if op == "atom":
            self.length = 1
            self._text = self._disp = ("~" if negated else "") + quote_name(name)
        else:
            # Operands sort by their own text (args come sorted); compound ones show in parentheses.
            length = 0
            for a in args:
                length += a.length
            self.length = length
            self._text = _SEP[op].join([a._disp for a in args])
            self._disp = "(" + self._text + ")"
        self._hash = hash(self._text)

    def _display(self) -> str:
        return self._disp

    @property
    def _parts(self) -> list[tuple[str, str]] | None:
        """(sort key, display) of each operand; None for an atom."""
        return None if self.op == "atom" else [(a._text, a._disp) for a in self.args]

    # --- construction -------------------------------------------------------------------------
    @staticmethod
    def atom(name: str, negated: bool = False) -> Formula:
        """The concept `name` (or its negation)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty concept name, got {name!r}")
        return Formula("atom", name, bool(negated))

    @staticmethod
    def _join(op: str, operands) -> Formula:
        flat: dict[str, Formula] = {}
        for f in operands:
            for g in f.args if f.op == op else (f,):
                flat[g._text] = g
        if len(flat) == 1:
            return next(iter(flat.values()))
        return Formula(op, args=tuple(flat[t] for t in sorted(flat)))

    def operand_keys(self) -> list[str]:
        """The texts of an AND/OR formula's operands, in canonical (text) order; [] for an atom."""
        return [k for k, _ in self._parts] if self._parts else []

    def joined_text(self, op: str, atom: Formula) -> str:
        """str(self & atom) (op "and") or str(self | atom) (op "or"), without building the formula."""
        if self.op == op:
            if any(k == atom._text for k, _ in self._parts):
                return self._text
            parts = sorted([*self._parts, (atom._text, atom._text)])
        elif self._text == atom._text:
            return self._text
        else:
            parts = sorted([(self._text, self._display()), (atom._text, atom._text)])
        return _SEP[op].join(d for _, d in parts)

    def joined(self, op: str, atom: Formula) -> Formula:
        """self & atom (op "and") or self | atom (op "or"): the same formula as the operators build,
        without flattening and sorting from scratch (the search builds its labels this way)."""
        key = atom._text
        if self.op == op:
            keys = [a._text for a in self.args]
            if key in keys:
                return self
            i = bisect.bisect_left(keys, key)
            args = (*self.args[:i], atom, *self.args[i:])
        elif self._text == key:
            return self
        else:
            args = (self, atom) if self._text < key else (atom, self)
        return Formula(op, args=args)

    def __and__(self, other: Formula) -> Formula:
        return Formula._join("and", (self, _check(other)))

    def __or__(self, other: Formula) -> Formula:
        return Formula._join("or", (self, _check(other)))

    def __invert__(self) -> Formula:
        # De Morgan bottom-up with an explicit stack: deep formulas must not exhaust Python's recursion.
        done: dict[int, Formula] = {}
        for f in self.subformulas():
            if f.op == "atom":
                done[id(f)] = Formula("atom", f.name, not f.negated)
            else:
                done[id(f)] = Formula._join("or" if f.op == "and" else "and", [done[id(a)] for a in f.args])
        return done[id(self)]

    def subformulas(self) -> list[Formula]:
        """Every distinct sub-formula once, operands before the formulas that use them (ends with self;
        iterative, so any depth works)."""
        order, stack, seen = [], [(self, False)], set()
        while stack:
            f, expanded = stack.pop()
            if expanded:
                order.append(f)
            elif id(f) not in seen:
                seen.add(id(f))
                stack.append((f, True))
                stack.extend((a, False) for a in f.args)
        return order

    # --- identity -----------------------------------------------------------------------------
    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Formula({self._text!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Formula) and self._text == other._text

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: Formula) -> bool:
        return self._text < other._text

    def render(self, name_of) -> str:
        """The formula's text with every atom's name written as name_of(name) (not quoted), operands in
        the formula's own order: replacing whole atoms, never substrings of other names.

        Example:
            >>> Formula.parse("cat2 | ~cat").render({"cat": "tabby", "cat2": "lion"}.get)
            'lion | ~tabby'
        """
        texts: dict[int, str] = {}
        for f in self.subformulas():  # children first, no recursion
            if f.op == "atom":
                texts[id(f)] = ("~" if f.negated else "") + str(name_of(f.name))
            else:
                texts[id(f)] = _SEP[f.op].join(texts[id(a)] if a.op == "atom" else f"({texts[id(a)]})" for a in f.args)
        return texts[id(self)]

    def concepts(self) -> set[str]:
        """Names of the concepts the formula uses."""
        return {f.name for f in self.subformulas() if f.op == "atom"}

    def positive_concepts(self) -> set[str]:
        """Names of the concepts the formula uses un-negated (as `c`, not `~c`): what a label names.

        Example:
            >>> Formula.parse("sneaker | (sandal & ~boot)").positive_concepts() == {"sneaker", "sandal"}
            True
        """
        return {f.name for f in self.subformulas() if f.op == "atom" and not f.negated}

    # --- evaluation ---------------------------------------------------------------------------
    def evaluate(self, atom):
        """Combine the operands' values with ``&`` and ``|``, starting from atom(name, negated) of each atom.

        Args:
            atom: callable (name, negated) -> a value supporting ``&`` and ``|`` (a packed mask, a Python int
                bit set, a bool tensor ...); it must return a new object or one the caller may not mutate.
        """
        values: dict[int, object] = {}
        for f in self.subformulas():  # children first, no recursion
            if f.op == "atom":
                values[id(f)] = atom(f.name, f.negated)
                continue
            out = values[id(f.args[0])]
            for a in f.args[1:]:
                out = (out & values[id(a)]) if f.op == "and" else (out | values[id(a)])
            values[id(f)] = out
        return values[id(self)]

    def bits(self, concepts) -> torch.Tensor:
        """[ceil(N / 64)] int64 packed mask of the formula over a ConceptSet's samples."""
        valid = _valid_bits(concepts)

        def atom(name, negated):
            row = concepts.bits[concepts.index(name)]
            return (~row & valid) if negated else row

        return self.evaluate(atom)

    def mask(self, concepts) -> torch.Tensor:
        """[N] bool mask of the formula over a ConceptSet's samples."""
        from .bits import unpack_bits

        return unpack_bits(self.bits(concepts), concepts.n_samples)

    # --- parsing ------------------------------------------------------------------------------
    @staticmethod
    def parse(text: str, names=None) -> Formula:
        """Parse Python operator syntax: ``~`` binds tightest, then ``&``, then ``|``; names may be quoted.

        Args:
            text: e.g. 'sneaker | (sandal & ~"ankle boot")'.
            names: optional collection of valid concept names (a ConceptSet works); unknown names
                are an error.
        """
        if not isinstance(text, str):
            raise TypeError(f"text: expected a formula string, got {type(text).__name__}")
        tokens = _tokenize(text)
        known = set(names.names if hasattr(names, "names") else names) if names is not None else None
        return _parse(tokens, text, known)


def quote_name(name: str) -> str:
    """A concept name as it appears in formula text (JSON-quoted unless a plain word)."""
    return name if _PLAIN_NAME.match(name) else json.dumps(name, ensure_ascii=False)


def _check(other) -> Formula:
    if not isinstance(other, Formula):
        raise TypeError(f"formulas combine with formulas, got {type(other).__name__}")
    return other


def _valid_bits(concepts) -> torch.Tensor:
    """[W] int64 with the bits of real samples set (padding bits clear), so NOT keeps padding 0."""
    from .bits import pack_bits

    return pack_bits(torch.ones(concepts.n_samples, dtype=torch.bool, device=concepts.device))


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text_end = len(text.rstrip())
    while pos < text_end:
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"formula {_short(text)}: cannot read it at position {pos}: {text[pos : pos + 10]!r}")
        if m.group("op"):
            tokens.append(("op", m.group("op")))
        elif m.group("quoted"):
            try:
                tokens.append(("name", json.loads(m.group("quoted"))))
            except ValueError as e:  # e.g. '"bad \\q"': an escape JSON does not know
                start = m.start("quoted")
                raise ValueError(
                    f"formula {_short(text)}: cannot read the quoted name at position {start}: {e.msg}"
                ) from None
        else:
            tokens.append(("name", m.group("name")))
        pos = m.end()
    if not tokens:
        raise ValueError("formula: expected a formula, got an empty string")
    return tokens


def _short(text: str, limit: int = 80) -> str:
    """The formula text for an error message, cut to `limit` characters (long chains stay one line)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} characters)"


MAX_DEPTH = 1000  # nesting of parentheses; a formula's text grows with depth times length


class _Group:
    """One parenthesised level being parsed: finished OR terms, the current AND chain, its sign."""

    __slots__ = ("terms", "chain", "negated")

    def __init__(self, negated: bool):
        self.terms: list[Formula] = []
        self.chain: list[Formula] = []
        self.negated = negated

    def close(self) -> Formula:
        self.terms.append(Formula._join("and", self.chain))
        f = Formula._join("or", self.terms)
        return ~f if self.negated else f


def _parse(tokens, text: str, known) -> Formula:
    """Operator precedence without recursion: ~ binds tightest, then &, then |. Each AND and OR chain
    is collected and joined once, so a chain of n atoms costs O(n log n), and nesting uses a stack."""
    stack = [_Group(False)]
    negate = False  # parity of the ~ read before the next operand
    want_operand = True
    for kind, value in tokens:
        if want_operand:
            if kind == "name":
                if known is not None and value not in known:
                    raise ValueError(f"formula {_short(text)}: unknown concept {value!r}")
                stack[-1].chain.append(Formula("atom", value, negate))
                negate, want_operand = False, False
            elif value == "~":
                negate = not negate
            elif value == "(":
                if len(stack) > MAX_DEPTH:
                    raise ValueError(f"formula {_short(text)}: parentheses nest deeper than {MAX_DEPTH} levels")
                stack.append(_Group(negate))
                negate = False
            else:
                raise ValueError(f"formula {_short(text)}: expected a concept name, got {value!r}")
        elif kind == "op" and value in "&|":
            if value == "|":
                group = stack[-1]
                group.terms.append(Formula._join("and", group.chain))
                group.chain = []
            want_operand = True
        elif kind == "op" and value == ")" and len(stack) > 1:
            f = stack.pop().close()
            stack[-1].chain.append(f)
        elif len(stack) > 1:  # an operand where ')' must come
            raise ValueError(f"formula {_short(text)}: missing ')' before {value!r}")
        else:
            raise ValueError(f"formula {_short(text)}: unexpected {value!r} after a complete formula")
    if want_operand:
        raise ValueError(f"formula {_short(text)}: expected a concept name, got 'the end'")
    if len(stack) > 1:
        raise ValueError(f"formula {_short(text)}: missing ')'")
    return stack[0].close()
