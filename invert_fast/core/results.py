"""Explanations: the labels of every neuron, and the one schema of their table rows (CSV, JSON, checkpoints)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import torch

from ..files import atomic_write, spreadsheet_safe, spreadsheet_text
from .formula import Formula
from .stats import adjust_pvalues

# The labels table, one row per (neuron, rank): (column, type). Every writer and reader of rows
# (records, CSV, JSON, checkpoints, the streaming writer) goes through encode_row / decode_row.
SCHEMA = (
    ("layer", str),
    ("neuron", int),
    ("rank", int),
    ("formula", Formula),
    ("length", int),
    ("auc", float),
    ("differentiability", float),
    ("concept_fraction", float),
    ("p_value", float),
    ("log10_p_value", float),
    ("p_value_adjusted", float),
    ("p_value_search", float),
    ("bound", float),
    ("certified", bool),
    ("iou", float),
    ("f1", float),
    ("auprc", float),
    ("correlation", float),
    ("cosine", float),
    ("auc_heldout", float),
    ("iou_heldout", float),
    ("f1_heldout", float),
    ("auprc_heldout", float),
    ("correlation_heldout", float),
    ("cosine_heldout", float),
    ("definitions", str),
)
COLUMNS = tuple(c for c, _ in SCHEMA)
REQUIRED = COLUMNS[:9]  # a labels table must have these; the later ones default to NaN / ""
MAX_NEURONS = 2**22  # neurons per layer a labels table may describe (read_csv holds a list per neuron)


@dataclass(frozen=True)
class Explanation:
    """One label of one neuron (a row of the labels table).

    Example:
        >>> e = explain(acts, concepts)[0][0]            # acts [N, D]: neuron 0's best label
        >>> str(e.formula), e.auc, e.p_value, e.concept_fraction

    Attributes:
        neuron: neuron index d; rank: 0 for the best label.
        formula: the Formula (str() gives Python operator syntax).
        length: atom occurrences; auc: exact AUROC of the neuron for the formula's mask.
        differentiability: 2 abs(auc - 0.5); concept_fraction: the mask's size / N.
        p_value, log10_p_value: Mann-Whitney U test of inside vs outside (log10 stays finite where p underflows).
        p_value_adjusted: across neurons (per rank), when an adjustment was asked for; else NaN.
        p_value_search: the permutation test of the whole search (explain(permutations=P)): the share
            of permutations whose best label's two-sided p-value is at least as small as this label's,
            (1 + count) / (1 + P); accounts for the search over all candidate formulas, not for
            testing many neurons. NaN when no permutations were asked for.
        bound: with certify (or search="exact"), the neuron's bound on the best score of the search's
            objective (the AUC for INVERT's; a lower bound in "negative" mode) any admissible formula of at
            most L atoms reaches: the exact optimum (L <= 3); NaN when not asked, and for correlation and
            cosine. A property of the neuron, repeated on each of its rows.
        certified: bound equals the rank-0 label's score, compared exactly (the label is optimal); False
            when not asked.
        iou, f1, auprc, correlation, cosine: the label's metrics against the neuron's top samples T (the
            search's alpha) and activations, whatever the objective (core/metrics.py: definitions, ties,
            error bounds); NaN where undefined or not computed.
        auc_heldout, iou_heldout, f1_heldout, auprc_heldout, correlation_heldout, cosine_heldout: the
            same measures of the label on the samples held out of the search (explain(holdout=...); T the
            held-out samples' own top share); NaN without a holdout or where undefined.
    """

    neuron: int
    rank: int
    formula: Formula
    length: int
    auc: float
    differentiability: float
    concept_fraction: float
    p_value: float
    log10_p_value: float
    p_value_adjusted: float = math.nan
    p_value_search: float = math.nan
    bound: float = math.nan
    certified: bool = False
    iou: float = math.nan
    f1: float = math.nan
    auprc: float = math.nan
    correlation: float = math.nan
    cosine: float = math.nan
    auc_heldout: float = math.nan
    iou_heldout: float = math.nan
    f1_heldout: float = math.nan
    auprc_heldout: float = math.nan
    correlation_heldout: float = math.nan
    cosine_heldout: float = math.nan


@dataclass
class Explanations(Sequence):
    """Labels of D neurons: res[d] is neuron d's list of Explanation, best first (at most B).

    Attributes:
        params: the search parameters used (L, B, limit_search, ...).
        layer: optional layer name written into every exported row.
        descriptions: concept name -> human-readable definition; exported rows carry the definitions
            of the concepts each formula uses.

    Example:
        >>> res = explain(acts, concepts, L=3, B=10)     # acts [N, D]
        >>> len(res), res[0][0].formula, res.to_dataframe().shape   # D, a formula, [D * B rows, columns]
    """

    per_neuron: list[list[Explanation]]
    params: dict = field(default_factory=dict)
    layer: str = ""
    descriptions: dict = field(default_factory=dict)

    def __getitem__(self, d):
        return self.per_neuron[d]

    def __len__(self) -> int:
        return len(self.per_neuron)

    def best(self) -> list[Explanation | None]:
        """The rank-0 label of each neuron (None where no admissible formula exists)."""
        return [e[0] if e else None for e in self.per_neuron]

    def records(self) -> list[dict]:
        """One dict per (neuron, rank) with the COLUMNS keys (see encode_row)."""
        return [encode_row(e, self.layer, self.descriptions) for exps in self.per_neuron for e in exps]

    def to_dataframe(self):
        """pandas DataFrame with one row per (neuron, rank)."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records(), columns=list(COLUMNS))

    def to_csv(self, path) -> None:
        """Write the table as CSV (atomically: a crash leaves no partial file)."""
        write_csv(path, self)

    def to_json(self, path) -> None:
        """Write {"params": ..., "layer": ..., "labels": [rows]} as JSON (NaN as null), atomically."""
        rows = [json_cells(r) for r in self.records()]
        with atomic_write(path) as f:
            json.dump({"params": self.params, "layer": self.layer, "labels": rows}, f, indent=1)


def encode_row(e: Explanation, layer: str = "", descriptions: dict | None = None) -> dict:
    """The table row of one label: {column: value} in SCHEMA order.

    Args:
        e: the label; layer: the layer name written into the row; descriptions: concept name ->
            definition (the row's "definitions" lists those of the concepts its formula uses).
    """
    descriptions = descriptions or {}
    row = {}
    for col, _ in SCHEMA:
        if col == "layer":
            row[col] = layer
        elif col == "formula":
            row[col] = str(e.formula)
        elif col == "definitions":
            row[col] = "; ".join(f"{c}: {descriptions[c]}" for c in sorted(e.formula.concepts()) if descriptions.get(c))
        else:
            row[col] = getattr(e, col)
    return row


_FIELDS = {f.name for f in fields(Explanation)}


def decode_row(row: dict) -> tuple[str, Explanation]:
    """(layer, Explanation) from a row as encode_row built it, or as read back from CSV (strings) or
    JSON (None for NaN). Columns after REQUIRED may be missing: NaN (floats) or "" (text).

    Raises:
        ValueError: naming the column whose value cannot be read.
    """
    values = {}
    for col, typ in SCHEMA:
        if col not in _FIELDS:
            continue
        v = row.get(col)
        try:
            if typ is float:
                values[col] = math.nan if v is None or v == "" else float(v)
            elif typ is int:
                values[col] = int(v)
            elif typ is Formula:
                values[col] = v if isinstance(v, Formula) else Formula.parse(v)
            elif typ is bool:
                if v in (None, "", False, "False", "false", 0, "0"):
                    values[col] = False
                elif v in (True, "True", "true", 1, "1"):
                    values[col] = True
                else:
                    raise ValueError("expected True or False")
            else:
                values[col] = "" if v is None else str(v)
        except (TypeError, ValueError) as err:
            raise ValueError(f"column {col!r}: cannot read {v!r} as {typ.__name__}: {err}") from None
    return str(row.get("layer") or ""), Explanation(**values)


def csv_cells(row: dict) -> dict:
    """A row as CSV cells: floats in full precision (repr), so values read back are the same numbers;
    text through spreadsheet_safe (a concept named "=1+2" never becomes a spreadsheet formula)."""
    return {
        k: repr(v) if isinstance(v, float) else spreadsheet_safe(v) if isinstance(v, str) else v for k, v in row.items()
    }


def json_cells(row: dict) -> dict:
    """A row as JSON values: NaN as null (JSON has no NaN)."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


class CsvRowWriter:
    """Writes labels rows as CSV to an open text file, header first: the streaming writer's core.

    Example:
        >>> with atomic_write("labels.csv") as f:
        ...     w = CsvRowWriter(f); w.write(res_chunk_1); w.write(res_chunk_2)
    """

    def __init__(self, f):
        self.writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        self.writer.writeheader()

    def write(self, res: Explanations) -> None:
        for r in res.records():
            self.writer.writerow(csv_cells(r))


def write_csv(path, *results: Explanations) -> None:
    """Write the rows of one or more Explanations (e.g. one per layer) as one CSV table, atomically.

    Example:
        >>> write_csv("labels.csv", explain(acts3, concepts, layer="layer3"), explain(acts4, concepts, layer="layer4"))
    """
    with atomic_write(path) as f:
        w = CsvRowWriter(f)
        for res in results:
            w.write(res)


def read_csv(path) -> list[Explanations]:
    """Read a labels table written by to_csv / write_csv back: one Explanations per layer, in file order.

    Raises:
        ValueError: naming the file and line of a row that cannot be read, a neuron id outside
            [0, MAX_NEURONS), a negative rank or a (layer, neuron, rank) given twice.

    Example:
        >>> (layer3,) = read_csv("labels.csv")           # one Explanations per layer in the file
        >>> layer3.layer, layer3[0][0].formula
    """
    layers: dict[str, dict[int, list[Explanation]]] = {}
    seen: dict[tuple[str, int, int], int] = {}
    line = 1
    with open(path, newline="", encoding="utf-8") as f:
        try:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"labels file {path}: missing columns {missing} (expected {list(COLUMNS)})")
            for line, row in enumerate(reader, start=2):
                try:
                    layer, e = decode_row({k: spreadsheet_text(v) if isinstance(v, str) else v for k, v in row.items()})
                    if not 0 <= e.neuron < MAX_NEURONS:  # ids index a list per neuron: bound them first
                        raise ValueError(f"column 'neuron': expected an index in [0, {MAX_NEURONS:,}), got {e.neuron}")
                    if e.rank < 0:
                        raise ValueError(f"column 'rank': expected a rank >= 0, got {e.rank}")
                    first = seen.setdefault((layer, e.neuron, e.rank), line)
                    if first != line:
                        raise ValueError(f"neuron {e.neuron} rank {e.rank} of layer {layer!r} is also on line {first}")
                except ValueError as err:
                    raise ValueError(f"labels file {path}, line {line}: {err}") from None
                layers.setdefault(layer, {}).setdefault(e.neuron, []).append(e)
        except csv.Error as err:  # e.g. a field beyond csv's size limit, a NUL byte
            raise ValueError(f"labels file {path}, line {line + 1}: not a CSV row: {err}") from None
    out = []
    for layer, neurons in layers.items():
        d = max(neurons) + 1
        out.append(Explanations([sorted(neurons.get(i, []), key=lambda e: e.rank) for i in range(d)], layer=layer))
    return out


def adjust_explanations(per_neuron: list[list[Explanation]], method: str) -> None:
    """Fill p_value_adjusted in place: p-values adjusted across neurons, one family per rank.

    Args:
        per_neuron: [D] lists of Explanation (rank r of every neuron that has one forms family r).
        method: "bh" or "bonferroni" (see stats.adjust_pvalues).
    """
    depth = max((len(r) for r in per_neuron), default=0)
    for rank in range(depth):
        idx = [d for d, r in enumerate(per_neuron) if len(r) > rank]
        p = torch.tensor([per_neuron[d][rank].p_value for d in idx], dtype=torch.float64)
        adj = adjust_pvalues(p, method).tolist()
        for d, a in zip(idx, adj, strict=True):
            e = per_neuron[d][rank]
            per_neuron[d][rank] = Explanation(**{**e.__dict__, "p_value_adjusted": a})
