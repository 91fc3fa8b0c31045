"""argparse types for the commands' numeric options: a bad value is refused while parsing, with one
line naming the option, what was expected and what came (argparse: "argument --samples: ...")."""

from __future__ import annotations

import argparse
import math


def int_at_least(minimum: int):
    """An argparse type: an integer >= minimum.

    Example:
        >>> int_at_least(1)("12")
        12
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # argparse names the type in its messages
    return parse


def fraction(low_open: bool = False, high_open: bool = False):
    """An argparse type: a finite number in [0, 1] (ends excluded where asked).

    Example:
        >>> fraction(low_open=True)("0.005")
        0.005
    """
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = (
            math.isfinite(value)
            and (value > 0 if low_open else value >= 0)
            and (value < 1 if high_open else value <= 1)
        )
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a number in {lo}0, 1{hi}, got {text!r}")
        return value

    parse.__name__ = f"number in {lo}0, 1{hi}"
    return parse
