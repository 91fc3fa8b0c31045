"""On-disk activation stores read in neuron chunks with a bounded memory footprint.

A store is a plain .npy file (any numpy reads it) holding the [N samples, D neurons] activations of a
layer in one of two layouts:

- sample-major, `layer.npy`, [N, D] as capture() writes it: appending samples is cheap, but a chunk
  of neurons is a strided read of every row;
- neuron-major, `layer.neurons.npy`, [D, N] on disk: a chunk of neurons is one contiguous read.
  `to_neuron_major` converts with square tiles (bounded memory, large sequential I/O).

Reads use explicit file reads into fresh buffers, not memory maps, so the process holds only the
chunk being read (mapped file pages would count towards its resident memory).
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import torch

NEURON_MAJOR_SUFFIX = ".neurons.npy"


class NeuronStore:
    """An [N, D] activation matrix in a .npy file, read in neuron chunks.

    Args:
        path: a sample-major .npy ([N, D]) or a neuron-major `*.neurons.npy` ([D, N] on disk).

    Attributes:
        shape: (N, D) whatever the layout; dtype: numpy dtype; neuron_major: the layout.

    Example:
        >>> store = NeuronStore("acts/layer3.neurons.npy")
        >>> x = store.read(0, 512)      # [N, 512] torch tensor, one contiguous read
    """

    def __init__(self, path):
        self.path = Path(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            self.offset = f.tell()
        if len(shape) != 2:
            raise ValueError(f"activations: {self.path} holds an array of shape {shape}; expected 2-D")
        if fortran:
            raise ValueError(f"activations: {self.path} is Fortran-ordered; save it C-ordered")
        if dtype.kind != "f" or dtype.byteorder == ">":
            raise TypeError(f"activations: {self.path} holds {dtype}; expected little-endian floats")
        self.dtype = dtype
        self.neuron_major = self.path.name.endswith(NEURON_MAJOR_SUFFIX)
        self.shape = (shape[1], shape[0]) if self.neuron_major else tuple(shape)
        expected = self.offset + math.prod(shape) * dtype.itemsize
        if os.path.getsize(self.path) < expected:
            raise ValueError(f"activations: {self.path} is truncated ({os.path.getsize(self.path)} < {expected} bytes)")

    def __repr__(self) -> str:
        layout = "neuron-major" if self.neuron_major else "sample-major"
        return f"NeuronStore({str(self.path)!r}, {self.shape[0]} samples x {self.shape[1]} neurons, {layout})"

    def read(self, d0: int, d1: int, max_buffer: int = 2**26) -> torch.Tensor:
        """Neurons d0:d1 of every sample as an [N, d1 - d0] tensor (a transposed view for neuron-major files).

        Sample-major files are read in blocks of whole rows of at most `max_buffer` bytes.
        """
        n, d = self.shape
        d0, d1 = max(0, d0), min(d, d1)
        item = self.dtype.itemsize
        with open(self.path, "rb", buffering=0) as f:
            if self.neuron_major:
                buf = np.empty((d1 - d0, n), dtype=self.dtype)
                _read_into(f, buf, self.offset + d0 * n * item)
                return torch.from_numpy(buf).T
            out = np.empty((n, d1 - d0), dtype=self.dtype)
            rows = max(1, max_buffer // max(1, d * item))
            for r0 in range(0, n, rows):
                block = np.empty((min(rows, n - r0), d), dtype=self.dtype)
                _read_into(f, block, self.offset + r0 * d * item)
                out[r0 : r0 + len(block)] = block[:, d0:d1]
            return torch.from_numpy(out)

    def fingerprint(self) -> str:
        """What identifies the contents cheaply: header, size and 64 evenly spaced 4 KiB blocks."""
        h = hashlib.sha256(f"{self.shape} {self.dtype.str} {self.neuron_major}".encode())
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            for i in range(64):
                f.seek(self.offset + (size - self.offset) * i // 64)
                h.update(f.read(4096))
        return h.hexdigest()


def to_neuron_major(src, dst=None, max_memory: int = 2**28) -> Path:
    """Transpose a sample-major [N, D] .npy into a neuron-major store ([D, N] on disk), atomically.

    Works in square tiles of at most `max_memory` bytes: each tile is read as `rows` row segments and
    written as `cols` neuron segments, so I/O stays large and memory bounded for any N and D.

    Args:
        src: sample-major .npy path. dst: output path (default: src with suffix .neurons.npy).

    Returns:
        the output path.

    Example:
        >>> to_neuron_major("acts/layer3.npy")        # -> acts/layer3.neurons.npy
    """
    store = NeuronStore(src)
    if store.neuron_major:
        raise ValueError(f"src: {src} is already neuron-major")
    dst = Path(dst) if dst is not None else store.path.with_name(store.path.name[: -len(".npy")] + NEURON_MAJOR_SUFFIX)
    if not dst.name.endswith(NEURON_MAJOR_SUFFIX):
        raise ValueError(f"dst: a neuron-major store must be named *{NEURON_MAJOR_SUFFIX}, got {dst.name}")
    n, d = store.shape
    item = store.dtype.itemsize
    side = max(1, int(math.isqrt(max(1, max_memory // (2 * item)))))  # tile + its transpose fit
    tmp = dst.with_name(f".{dst.name}.partial")
    header = {"descr": np.lib.format.dtype_to_descr(store.dtype), "fortran_order": False, "shape": (d, n)}
    try:
        with open(tmp, "wb") as out:
            np.lib.format.write_array_header_1_0(out, header)
            base = out.tell()
            out.truncate(base + n * d * item)
        with open(store.path, "rb", buffering=0) as f, open(tmp, "r+b", buffering=0) as out:
            for r0 in range(0, n, side):
                r1 = min(n, r0 + side)
                for c0 in range(0, d, side):
                    c1 = min(d, c0 + side)
                    tile = np.empty((r1 - r0, c1 - c0), dtype=store.dtype)
                    for r in range(r0, r1):
                        _read_into(f, tile[r - r0], store.offset + (r * d + c0) * item)
                    t = np.ascontiguousarray(tile.T)
                    for c in range(c0, c1):
                        os.pwrite(out.fileno(), t[c - c0].tobytes(), base + (c * n + r0) * item)
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dst


def _read_into(f, buf: np.ndarray, offset: int) -> None:
    view = memoryview(buf).cast("B")
    got = 0
    while got < len(view):
        k = os.preadv(f.fileno(), [view[got:]], offset + got)
        if k <= 0:
            raise OSError(f"unexpected end of {f.name} at byte {offset + got}")
        got += k
