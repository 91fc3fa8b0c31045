"""Explanations: the labels of every neuron, with exports to tables (pandas, CSV, JSON)."""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .formula import Formula

COLUMNS = (
    "layer",
    "neuron",
    "rank",
    "formula",
    "length",
    "auc",
    "differentiability",
    "concept_fraction",
    "p_value",
    "log10_p_value",
    "p_value_adjusted",
    "definitions",
)


@dataclass(frozen=True)
class Explanation:
    """One label of one neuron.

    Attributes:
        neuron: neuron index d; rank: 0 for the best label.
        formula: the Formula (str() gives Python operator syntax).
        length: atom occurrences; auc: exact AUROC of the neuron for the formula's mask.
        differentiability: 2 |auc - 0.5|; concept_fraction: |mask| / N.
        p_value, log10_p_value: Mann-Whitney U test of inside vs outside (log10 stays finite where p underflows).
        p_value_adjusted: across neurons (per rank), when an adjustment was asked for; else NaN.
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


@dataclass
class Explanations(Sequence):
    """Labels of D neurons: res[d] is neuron d's list of Explanation, best first (at most B).

    Attributes:
        params: the search parameters used (L, B, limit_search, ...).
        layer: optional layer name written into every exported row.
        descriptions: concept name -> human-readable definition; exported rows carry the definitions
            of the concepts each formula uses.
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
        """One dict per (neuron, rank) with the COLUMNS keys."""
        rows = []
        for exps in self.per_neuron:
            for e in exps:
                rows.append(
                    {
                        "layer": self.layer,
                        "neuron": e.neuron,
                        "rank": e.rank,
                        "formula": str(e.formula),
                        "length": e.length,
                        "auc": e.auc,
                        "differentiability": e.differentiability,
                        "concept_fraction": e.concept_fraction,
                        "p_value": e.p_value,
                        "log10_p_value": e.log10_p_value,
                        "p_value_adjusted": e.p_value_adjusted,
                        "definitions": "; ".join(
                            f"{c}: {self.descriptions[c]}"
                            for c in sorted(e.formula.concepts())
                            if self.descriptions.get(c)
                        ),
                    }
                )
        return rows

    def to_dataframe(self):
        """pandas DataFrame with one row per (neuron, rank)."""
        import pandas as pd

        return pd.DataFrame.from_records(self.records(), columns=list(COLUMNS))

    def to_csv(self, path) -> None:
        """Write the table as CSV (atomically: a crash leaves no partial file)."""
        write_csv(path, self)

    def to_json(self, path) -> None:
        """Write {"params": ..., "layer": ..., "labels": [rows]} as JSON (NaN as null), atomically."""
        rows = [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in self.records()
        ]
        with _atomic(path) as f:
            json.dump({"params": self.params, "layer": self.layer, "labels": rows}, f, indent=1)


def write_csv(path, *results: Explanations) -> None:
    """Write the rows of one or more Explanations (e.g. one per layer) as one CSV table, atomically.
    Floats are written in full precision (repr), so values read back are the same numbers."""
    with _atomic(path) as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        for res in results:
            for r in res.records():
                w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})


def read_csv(path) -> list[Explanations]:
    """Read a labels table written by to_csv / write_csv back: one Explanations per layer, in file order."""
    layers: dict[str, dict[int, list[Explanation]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS[:9] if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"labels file {path}: missing columns {missing} (expected {list(COLUMNS)})")
        for row in reader:
            e = Explanation(
                neuron=int(row["neuron"]),
                rank=int(row["rank"]),
                formula=Formula.parse(row["formula"]),
                length=int(row["length"]),
                auc=float(row["auc"]),
                differentiability=float(row["differentiability"]),
                concept_fraction=float(row["concept_fraction"]),
                p_value=float(row["p_value"]),
                log10_p_value=float(row.get("log10_p_value") or "nan"),
                p_value_adjusted=float(row.get("p_value_adjusted") or "nan"),
            )
            layers.setdefault(row["layer"], {}).setdefault(e.neuron, []).append(e)
    out = []
    for layer, neurons in layers.items():
        d = max(neurons) + 1
        out.append(Explanations([sorted(neurons.get(i, []), key=lambda e: e.rank) for i in range(d)], layer=layer))
    return out


class _atomic:
    """Open a temporary file beside `path` and move it into place only on success."""

    def __init__(self, path, binary: bool = False):
        self.path, self.binary = Path(path), binary

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        self.f = os.fdopen(fd, "wb") if self.binary else os.fdopen(fd, "w", newline="")
        return self.f

    def __exit__(self, exc_type, exc, tb):
        self.f.close()
        if exc_type is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the file from other users
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)
