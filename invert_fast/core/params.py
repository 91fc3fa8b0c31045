"""The parameters of an INVERT search, written once: explain(), checkpoints, the CLI and exports use them.

A SearchParams is frozen and validated when built, so a search never sees an unchecked value and two
runs with equal parameters have equal `key()`s (what a checkpoint records).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .objectives import OBJECTIVES, check_alpha, objective
from .stats import ALTERNATIVES
from .validate import check_positive_int

MODES = ("positive", "negative")
BOUNDED = ("iou", "f1")  # objectives besides AUROC with an exact search's bound at L = 3 (core/exact.py)
SEARCHES = ("beam", "exact")


def _option(
    default, help: str, *, flag: str | None = None, minimum: int | None = None, choices=None, shown=None, type=None
):
    """A SearchParams field with the metadata its command-line option is built from."""
    meta = {"help": help, "flag": flag, "minimum": minimum, "choices": choices, "shown": shown, "type": type}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SearchParams:
    """What defines the labels of a neuron (not how fast they are found).

    Attributes:
        L: longest formula (atom occurrences), >= 1.
        B: beam size and number of labels per neuron, >= 1.
        limit_search: extension atoms per neuron (the limit_search atoms of largest
            differentiability); None for all 2K.
        min_fraction, max_fraction: admissible share of samples in a formula's mask (and 0 < share < 1).
        mode: "positive" (formulas the neuron activates for: AUC descending) or "negative".
        alternative: Mann-Whitney alternative of the p-values: "two-sided", "greater", "less".
        distinct: formulas with equal sample masks count once (the shortest, then first in text
            order, is kept); False keeps formulas of equal masks but different text apart (INVERT 1.1).
        permutations: P permutations of the samples for p_value_search (0: none).
        seed: seed of the permutations' CPU generator.
        search: "beam" (INVERT's beam search) or "exact" (the best formulas of at most L <= 3 atoms).
        certify: add each neuron's bound on the best AUC any formula of <= L atoms reaches (L <= 3).
        objective: what a label maximizes (core/objectives.py): "auroc" (INVERT), "iou", "f1" or "auprc"
            (overlap with the neuron's top samples T), "correlation" or "cosine" (of activations and mask).
        alpha: T's share of the samples (the ceil(alpha N) largest activations, ties at the cutoff
            included), or "support" (activations > 0): the overlap objectives' T and every label's metrics.
        holdout: share of the samples held out of the search and scored afterwards (0: none; search.holdout_split).

    Example:
        >>> SearchParams(L=2, B=5, min_fraction=0.02).size_bounds(1000)
        (20, 500)
    """

    # Each field's command-line option is made from its metadata (apps/argtypes.add_search_arguments):
    # flag (default --<name>), help, minimum (an integer option's), choices, type, and the default shown.
    L: int = _option(3, "longest formula (atom occurrences)", flag="-L")
    B: int = _option(10, "beam size and number of labels per neuron", flag="-B")
    limit_search: int | None = _option(
        None, "extension atoms per neuron: only the N atoms of largest differentiability extend formulas",
        minimum=1, shown="all 2K atoms",
    )  # fmt: skip
    min_fraction: float = _option(
        0.0, "smallest admissible share of samples in a label (0 as INVERT; with 0 masks of a few samples tend to "
        "win: set it to the smallest share a label should cover, README 'Choosing min_fraction')",
    )  # fmt: skip
    max_fraction: float = _option(0.5, "largest admissible share of samples in a label")
    mode: str = _option(
        "positive", "positive: formulas the neuron fires for (AUC descending); negative: AUC ascending", choices=MODES
    )
    alternative: str = _option(
        "two-sided", "Mann-Whitney alternative of p_value: greater = the neuron fires more inside the mask",
        choices=ALTERNATIVES,
    )  # fmt: skip
    distinct: bool = _option(
        True, "one label per distinct sample mask, the shortest formula kept; --no-distinct keeps formulas of equal "
        "masks but different text apart, as INVERT 1.1",
    )  # fmt: skip
    permutations: int = _option(
        0, "permutations of the samples for p_value_search, the test of the whole search", minimum=0, shown="0: none"
    )
    seed: int = _option(0, "seed of the permutations")
    search: str = _option(
        "beam", "beam: INVERT's beam search; exact: the B best distinct masks among every formula of at most L <= 3 "
        "atoms", choices=SEARCHES,
    )  # fmt: skip
    certify: bool = _option(
        False, "add each neuron's exact bound on the best score (AUC; IoU or F1 with --objective) of any formula of "
        "<= L atoms (L <= 3) and whether the best label reaches it (columns bound, certified); costs an exact search",
    )  # fmt: skip
    objective: str = _option(
        "auroc", "what a label maximizes: auroc (INVERT); iou, f1 or auprc: overlap with the neuron's top samples "
        "(--alpha); correlation or cosine: of the activations and the mask",
        choices=tuple(OBJECTIVES),
    )  # fmt: skip
    alpha: float | str = _option(
        0.005, "the top samples' share (ties at the cutoff included), or 'support' (activations > 0): T of "
        "--objective iou / f1 / auprc and of every label's iou, f1, auprc columns", type=lambda text: text if text == "support" else float(text),
    )  # fmt: skip

    holdout: float = _option(
        0.0, "share of the samples held out of the search (whole groups with --groups or a store's sequences, "
        "seeded by --seed): every label is also scored on them (columns auc_heldout, iou_heldout, ...); 0: none",
        type=float,
    )  # fmt: skip

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731  (frozen)
        set_("L", check_positive_int(self.L, "L"))
        set_("B", check_positive_int(self.B, "B"))
        if self.limit_search is not None:
            set_("limit_search", check_positive_int(self.limit_search, "limit_search"))
        set_("min_fraction", fraction(self.min_fraction, "min_fraction"))
        set_("max_fraction", fraction(self.max_fraction, "max_fraction"))
        if self.min_fraction > self.max_fraction:
            raise ValueError(
                f"min_fraction: must not exceed max_fraction, got {self.min_fraction} > {self.max_fraction}"
            )
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {self.mode!r}")
        if self.alternative not in ALTERNATIVES:
            raise ValueError(f"alternative: expected one of {ALTERNATIVES}, got {self.alternative!r}")
        if not isinstance(self.distinct, bool | np.bool_):
            raise TypeError(f"distinct: expected True or False, got {type(self.distinct).__name__} {self.distinct!r}")
        set_("distinct", bool(self.distinct))
        set_("permutations", check_positive_int(self.permutations, "permutations", minimum=0))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed: expected an integer in [0, 2^63), got {self.seed!r}")
        set_("seed", int(self.seed))
        if self.search not in SEARCHES:
            raise ValueError(f"search: expected one of {SEARCHES}, got {self.search!r}")
        if not isinstance(self.certify, bool | np.bool_):
            raise TypeError(f"certify: expected True or False, got {type(self.certify).__name__} {self.certify!r}")
        set_("certify", bool(self.certify))
        if self.certify and self.L > 3:
            raise ValueError(f"certify: bounds are computed for L <= 3 (the exact search's range), got L = {self.L}")
        objective(self.objective)
        set_("alpha", check_alpha(self.alpha))
        h = self.holdout
        if isinstance(h, bool) or not isinstance(h, int | float | np.floating | np.integer) or not 0 <= float(h) < 1:
            raise ValueError(f"holdout: expected a share in [0, 1) of the samples to hold out (0: none), got {h!r}")
        set_("holdout", float(h))
        if self.objective != "auroc":
            # What is defined for AUROC alone so far, refused in one line naming the objective.
            for name, bad, why in (
                ("mode", self.mode != "positive", "'negative' mirrors AUROC's ranks"),
                ("limit_search", self.limit_search is not None, "it ranks atoms by AUROC's differentiability"),
                (
                    "search",
                    self.search != "beam" and self.L > 2 and self.objective not in BOUNDED,
                    "at L = 3 the exact search has bounds for auroc, iou and f1; L <= 2 is exact for every objective",
                ),
                ("certify", self.certify and self.objective not in BOUNDED, "bounds exist for auroc, iou and f1"),
            ):
                if bad:
                    raise ValueError(
                        f"{name}: not available with objective {self.objective!r} ({why}), got {getattr(self, name)!r}"
                    )

    @property
    def scorer(self):
        """The objective's class (core/objectives.py)."""
        return objective(self.objective)

    @property
    def sign(self) -> float:
        """+1.0 in "positive" mode (higher AUC is better), -1.0 in "negative" mode."""
        return 1.0 if self.mode == "positive" else -1.0

    def size_bounds(self, n: int) -> tuple[int, int]:
        """Admissible mask sizes for n samples; see size_bounds()."""
        return size_bounds(n, self.min_fraction, self.max_fraction)

    def as_dict(self) -> dict:
        """{field: value}, JSON-serialisable: exported with the labels and recorded by checkpoints."""
        return asdict(self)


def fraction(v, name: str) -> float:
    """A share in [0, 1] as a Python float (numpy floats accepted; bools rejected). A numpy float32 or
    float16 is read as the decimal it prints as (np.float32(0.1) is 0.1, not 0.10000000149...), so a
    mask of exactly 10% of the samples stays admissible whichever float type gave the bound."""
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise TypeError(f"{name}: expected a number in [0, 1], got {type(v).__name__} {v!r}")
    value = float(str(v)) if isinstance(v, np.floating) and np.finfo(v.dtype).bits < 64 else float(v)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {v}")
    return value


def size_bounds(n: int, min_fraction: float, max_fraction: float) -> tuple[int, int]:
    """Admissible mask sizes: 0 < P < n with min_fraction <= P / n <= max_fraction (float64 division).

    P / n grows with P, so the admissible sizes form the interval [p_lo, p_hi] (empty if p_lo > p_hi).
    """
    p_lo = max(1, math.ceil(min_fraction * n) - 2)
    while p_lo <= n - 1 and not p_lo / n >= min_fraction:
        p_lo += 1
    p_hi = min(n - 1, math.floor(max_fraction * n) + 2)
    while p_hi >= 1 and not p_hi / n <= max_fraction:
        p_hi -= 1
    return p_lo, p_hi
