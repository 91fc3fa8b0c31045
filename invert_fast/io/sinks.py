"""Where the label rows of a chunked run go as chunks finish: streamed to a CSV, or kept for the end."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from ..core.results import CsvRowWriter, Explanation, Explanations, adjust_explanations
from ..files import atomic_write


class StreamingCsvSink:
    """Writes each finished chunk's rows to `out` (.csv, atomically renamed at the end), keeping only
    each neuron's best AUC: memory holds one chunk of results however many neurons there are.

    Chunks must arrive in neuron order. Use as a context manager; result() is the [D] best AUCs.
    """

    def __init__(self, out, layer: str, descriptions: dict):
        self.out, self.layer, self.descriptions = Path(out), layer, descriptions
        self.best_auc: list[float] = []
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        self.writer = CsvRowWriter(self._stack.enter_context(atomic_write(self.out)))
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)

    def add(self, c: int, per_neuron: list[list[Explanation]], params: dict) -> None:
        self.writer.write(Explanations(per_neuron, params, self.layer, self.descriptions))
        self.best_auc += [row[0].auc if row else math.nan for row in per_neuron]

    def result(self) -> np.ndarray:
        return np.array(self.best_auc)


class CollectingSink:
    """Keeps every chunk's labels; merge() puts the chunks of all ranks in neuron order."""

    def __init__(self):
        self.chunks: dict[int, list[list[Explanation]]] = {}
        self.params: dict | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add(self, c: int, per_neuron: list[list[Explanation]], params: dict) -> None:
        self.chunks[c] = per_neuron
        self.params = self.params or params

    def state(self) -> tuple[dict, dict | None]:
        """What a rank sends to rank 0."""
        return self.chunks, self.params

    @staticmethod
    def merge(states, n_chunks: int, adjust: str | None, layer: str, descriptions: dict) -> Explanations:
        """One Explanations from the states of every rank (p-values adjusted over all neurons)."""
        chunks: dict[int, list] = {}
        params: dict | None = None
        for ch, p in states:
            chunks.update(ch)
            params = params or p
        missing = [c for c in range(n_chunks) if c not in chunks]
        if missing:
            raise RuntimeError(f"chunks {missing[:5]} were computed by no rank")
        per_neuron = [row for c in range(n_chunks) for row in chunks[c]]
        if adjust is not None:
            adjust_explanations(per_neuron, adjust)
        return Explanations(per_neuron, {**(params or {}), "adjust": adjust}, layer, descriptions)
