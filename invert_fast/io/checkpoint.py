"""Checkpoints of a long run: every finished chunk of neurons saved atomically, resumed after any kill,
and never reused unless it verifiably belongs to this run and these inputs.

A checkpoint folder holds meta.json (what the run is: the run key, a hash of the concept names and
masks and of the parameters, the activations' shape and dtype, the number of neurons and the chunk
size) and chunk_NNNNNN.json per finished chunk: its label rows (the labels table's schema,
core.results.encode_row), its neuron range, its own copy of the run key and parameters, a BLAKE2b hash
of the exact bytes of its slice of the activations, and a checksum over all of that.

On resume a chunk is reused only if its checksum, format, run key, chunk number, neuron range and
rows (one list per neuron of the range, neuron ids and ranks in order) check out and its slice of the
activations, re-read and re-hashed by the process that owns the chunk, hashes alike; otherwise it is
recomputed and the reason is reported. A folder of another run is refused, and so are chunk files
without meta.json (nothing says which run they belong to).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from ..core.concepts import ConceptSet
from ..core.results import Explanation, decode_row, encode_row, json_cells
from ..core.sparse import SparseColumns
from ..files import atomic_write

FORMAT = 3  # version of the files below; a folder written in another format is refused


def _blake(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def slice_hash(xc, max_bytes: int = 1 << 26) -> str:
    """BLAKE2b of a chunk of activations as explain sees it: shape, dtype and every byte, neuron by
    neuron (each column's N values in sample order; sparse: each column's stored samples and values),
    so the digest does not depend on how the chunk is read: pieces of at most `max_bytes` (a tensor
    [N, d], SparseColumns, or a store / NeuronSlice read piecewise).
    """
    n, d = xc.shape
    h = hashlib.blake2b(f"{tuple(xc.shape)}".encode(), digest_size=32)
    nnz = getattr(xc, "nnz", None)
    if nnz is not None:  # sparse: about 18 bytes per stored entry (sample, value, column)
        per_neuron = 18 * -(-nnz // max(d, 1)) + 8
    else:
        per_neuron = n * (xc.element_size() if isinstance(xc, torch.Tensor) else xc.dtype.itemsize)
    step = max(1, max_bytes // max(1, per_neuron))
    for a in range(0, d, step):
        if isinstance(xc, torch.Tensor):
            piece = xc[:, a : a + step]
        else:
            piece = xc.columns(a, a + step) if isinstance(xc, SparseColumns) else xc.read(a, a + step)
        if a == 0:
            h.update(str(piece.dtype).encode())
        if isinstance(piece, SparseColumns):
            for t in (piece.indptr.diff(), piece.indices, piece.values):
                h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy())
            continue
        cols = piece.detach().cpu().t().contiguous()  # [p, N]: neuron-major bytes
        if cols.numel():
            h.update(cols.reshape(-1).view(torch.uint8).numpy())  # hashed in place, no bytes copy
    return h.hexdigest()


def run_key(shape, dtype, concepts: ConceptSet, params: dict) -> str:
    """What every chunk of a run shares: the activations' shape and dtype, the concept names and masks
    (whole), and the parameters. The activations themselves are hashed per chunk (slice_hash)."""
    h = hashlib.blake2b(digest_size=32)
    h.update(json.dumps({"shape": list(shape), "dtype": str(dtype), "params": params}, sort_keys=True).encode())
    h.update(json.dumps(list(concepts.names)).encode())
    concepts.hash_into(h)
    return h.hexdigest()


class CheckpointStore:
    """The finished chunks of one run, in a folder.

    Args:
        folder: the checkpoint folder (created).
        key: run_key() of the run's inputs and parameters.
        neurons, chunk: D and the neurons per chunk.
        writer: whether this process writes meta.json (rank 0 does; the others only read).

    Raises:
        ValueError: the folder holds another run, or chunk files without meta.json.
    """

    def __init__(self, folder, key: str, neurons: int, chunk: int, writer: bool = True):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"checkpoint: expected a folder, got the file {self.folder}")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key, self.neurons, self.chunk = key, neurons, chunk
        meta = {"format": FORMAT, "run": key, "neurons": neurons, "chunk": chunk}
        path = self.folder / "meta.json"
        if path.exists():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(
                    f"checkpoint: {path} is not a checkpoint's meta.json ({e}); delete the folder"
                ) from None
            if saved != meta:
                raise ValueError(
                    f"checkpoint: {self.folder} holds a run with other inputs or parameters; use a new folder or delete it"
                )
        else:
            if any(self.folder.glob("chunk_*.json")):
                raise ValueError(
                    f"checkpoint: {self.folder} holds chunk files but no meta.json, so nothing says which run they "
                    "belong to; delete the folder (or its chunk files) to start afresh"
                )
            if writer:
                with atomic_write(path) as f:
                    json.dump(meta, f)

    def path(self, c: int) -> Path:
        return self.folder / f"chunk_{c:06d}.json"

    def range(self, c: int) -> tuple[int, int]:
        """Neurons [start, stop) of chunk c."""
        return c * self.chunk, min(self.neurons, (c + 1) * self.chunk)

    def load(self, c: int, input_hash: str) -> tuple[list[list[Explanation]], dict] | None:
        """Chunk c's labels (per neuron) and parameters, or None when not saved or not verifiable
        (then a warning names the file and the reason, and the caller recomputes the chunk).

        Args:
            c: the chunk number; input_hash: slice_hash() of the chunk's activations as read now.
        """
        path = self.path(c)
        if not path.exists():
            return None
        try:
            return self._verified(c, path, input_hash)
        except _Stale as e:
            warnings.warn(f"checkpoint: {path} {e}; recomputing chunk {c}", stacklevel=3)
            return None

    def _verified(self, c: int, path: Path, input_hash: str):
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            body, checksum = saved["body"], saved["checksum"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise _Stale(f"is not a readable checkpoint chunk ({type(e).__name__}: {e})") from None
        if _checksum(body) != checksum:
            raise _Stale("fails its checksum (edited or corrupted)")
        start, stop = self.range(c)
        want = {"format": FORMAT, "run": self.key, "chunk": c, "start": start, "stop": stop}
        got = {k: body.get(k) for k in want}
        if got != want:
            diff = ", ".join(f"{k} {got[k]!r} (expected {want[k]!r})" for k in want if got[k] != want[k])
            raise _Stale(f"belongs elsewhere: {diff}")
        if body.get("input") != input_hash:
            raise _Stale("was computed from other activations (the chunk's slice hashes differently now)")
        rows = body.get("rows")
        if not isinstance(rows, list) or len(rows) != stop - start:
            raise _Stale(f"holds {len(rows) if isinstance(rows, list) else 'no'} neurons, expected {stop - start}")
        per_neuron = []
        for i, row in enumerate(rows):
            try:
                labels = [decode_row(r)[1] for r in row]
            except (ValueError, TypeError, KeyError, IndexError) as e:
                raise _Stale(f"has an unreadable row for neuron {start + i} ({e})") from None
            for r, e in enumerate(labels):
                if e.neuron != start + i or e.rank != r:
                    raise _Stale(f"has neuron {e.neuron} rank {e.rank} where neuron {start + i} rank {r} belongs")
            per_neuron.append(labels)
        return per_neuron, body["params"]

    def save(self, c: int, per_neuron: list[list[Explanation]], params: dict, input_hash: str) -> None:
        """Save chunk c atomically (a kill leaves either the whole file or none)."""
        start, stop = self.range(c)
        body = {
            "format": FORMAT,
            "run": self.key,
            "chunk": c,
            "start": start,
            "stop": stop,
            "input": input_hash,
            "params": params,
            "rows": [[json_cells(encode_row(e)) for e in row] for row in per_neuron],
        }
        with atomic_write(self.path(c)) as f:
            json.dump({"body": body, "checksum": _checksum(body)}, f)


class _Stale(Exception):
    """A saved chunk that must not be reused (the message says why)."""


def _checksum(body) -> str:
    return _blake(json.dumps(body, sort_keys=True, ensure_ascii=True).encode())
