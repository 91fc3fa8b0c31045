"""Checkpoints of a long run: every finished chunk of neurons saved atomically, resumed after any kill.

A checkpoint folder holds meta.json (what the run is: a fingerprint of its inputs and parameters, the
number of neurons and the chunk size) and chunk_NNNNNN.json per finished chunk (its label rows in the
labels table's schema, core.results.encode_row). A run started again with the same inputs and
parameters reuses the saved chunks; a folder made by another run is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..core.concepts import ConceptSet
from ..core.results import Explanation, decode_row, encode_row, json_cells
from ..files import atomic_write
from .store import NeuronStore

FORMAT = 2  # version of the files below; a folder written in another format is refused


def fingerprint(x, concepts: ConceptSet, params: dict) -> str:
    """What a checkpoint must match to be resumed: shapes, a sample of the activations (64 rows of a
    tensor, 64 blocks of a store's file: cheap for any size), concept names and masks, parameters."""
    h = hashlib.sha256()
    store = isinstance(x, NeuronStore)
    h.update(json.dumps({"shape": list(x.shape), "dtype": str(x.dtype), "params": params}, sort_keys=True).encode())
    if store:
        h.update(x.fingerprint().encode())
    else:
        h.update(x[:: max(1, x.shape[0] // 64)].contiguous().cpu().numpy().tobytes())
    h.update("\0".join(concepts.names).encode())
    h.update(concepts.bits.cpu().numpy().tobytes())
    return h.hexdigest()


class CheckpointStore:
    """The finished chunks of one run, in a folder.

    Args:
        folder: the checkpoint folder (created).
        fingerprint: fingerprint() of the run's inputs and parameters.
        neurons, chunk: D and the neurons per chunk.
        writer: whether this process writes meta.json (rank 0 does; the others only read).

    Raises:
        ValueError: the folder holds another run.
    """

    def __init__(self, folder, fingerprint: str, neurons: int, chunk: int, writer: bool = True):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "fingerprint": fingerprint, "neurons": neurons, "chunk": chunk}
        path = self.folder / "meta.json"
        if path.exists():
            if json.loads(path.read_text()) != meta:
                raise ValueError(
                    f"checkpoint: {self.folder} holds a run with other inputs or parameters; use a new folder or delete it"
                )
        elif writer:
            with atomic_write(path) as f:
                json.dump(meta, f)

    def path(self, c: int) -> Path:
        return self.folder / f"chunk_{c:06d}.json"

    def load(self, c: int) -> tuple[list[list[Explanation]], dict] | None:
        """Chunk c's labels (per neuron) and the parameters it was computed with, or None if not saved."""
        path = self.path(c)
        if not path.exists():
            return None
        saved = json.loads(path.read_text())
        return [[decode_row(r)[1] for r in row] for row in saved["rows"]], saved["params"]

    def save(self, c: int, per_neuron: list[list[Explanation]], params: dict) -> None:
        """Save chunk c atomically (a kill leaves either the whole file or none)."""
        rows = [[json_cells(encode_row(e)) for e in row] for row in per_neuron]
        with atomic_write(self.path(c)) as f:
            json.dump({"rows": rows, "params": params}, f)
