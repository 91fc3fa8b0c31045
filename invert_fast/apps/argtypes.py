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


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per SearchParams field, built from the field's metadata (flag, help, minimum, choices) and
    default, so the command line, explain() and the checkpoint key share one definition of each parameter;
    args.<field> holds it (SearchParams(**{f: getattr(args, f) ...}) validates it).

    Example:
        >>> add_search_arguments(sub.add_parser("explain"))
    """
    from dataclasses import MISSING, fields

    from ..core.params import SearchParams

    for f in fields(SearchParams):
        m, default = f.metadata, f.default
        assert default is not MISSING and m.get("help"), f"SearchParams.{f.name}: an option needs a default and help"
        flag = m.get("flag") or "--" + f.name.replace("_", "-")
        shown = m.get("shown") or (("on" if default else "off") if isinstance(default, bool) else str(default))
        kw = {"dest": f.name, "default": default, "help": f"{m['help']} (default {shown})"}
        if isinstance(default, bool):
            kw["action"] = argparse.BooleanOptionalAction if default else "store_true"
        elif m.get("choices"):
            kw["choices"] = list(m["choices"])
        elif m.get("type") is not None:
            kw["type"] = m["type"]
        elif m.get("minimum") is not None:
            kw["type"] = int_at_least(m["minimum"])
        else:
            kw["type"] = float if isinstance(default, float) else int
        parser.add_argument(flag, **kw)
