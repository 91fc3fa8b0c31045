"""On-disk activation stores read in neuron chunks with a bounded memory footprint.

A store holds the [N samples, D neurons] activations of a layer in one of these formats:

- `.npy` (any numpy reads it), sample-major `layer.npy` [N, D] as capture() writes it (a chunk of
  neurons is a strided read of every row), or neuron-major `layer.neurons.npy` ([D, N] on disk: a
  chunk is one contiguous read; `to_neuron_major` converts with square tiles). Read with explicit
  file reads into fresh buffers, not memory maps, so the process holds only the chunk being read.
- HDF5 (`.h5`, `.hdf5`; the extra invert_fast[hdf5]): a 2-D dataset [N, D] (INVERT 1.2 writes `Y`),
  read by hyperslab, so a chunk of neurons is read without the rest.
- safetensors (`.safetensors`; the extra invert_fast[safetensors]): the format LLM-interpretability
  caches use; a 2-D tensor [N, D] read by slice.
- torch (`.pt`, `.pth`): a tensor (or a dict of tensors) saved with torch.save, memory-mapped; a
  torch sparse tensor (COO, CSR, CSC) is read as sparse activations.
- scipy (`.npz`): a sparse matrix saved with scipy.sparse.save_npz, read as sparse activations.
- a folder: EleutherAI delphi's latent cache (io/delphi.py), sparse.

Sparse stores return core.sparse.SparseColumns from read() (entries not stored are 0.0) and never
densify; `sparse` and `nnz` say which kind a store is.

`key` names the dataset / tensor; by default `Y` when present, else the only 2-D one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..core.sparse import as_sparse

NEURON_MAJOR_SUFFIX = ".neurons.npy"
FORMATS = (".npy", ".h5", ".hdf5", ".safetensors", ".pt", ".pth", ".npz")
# (accepts(path) -> bool, NeuronStore subclass) for folders; filled by the modules that define them.
FOLDER_STORES: list = []


class NeuronStore:
    """An [N, D] activation matrix in a file, read in neuron chunks.

    Args:
        path: .npy (sample-major [N, D], or neuron-major `*.neurons.npy`), .h5/.hdf5, .safetensors or .pt.
        key: the dataset or tensor (HDF5, safetensors, a dict in a .pt); default `Y` when present,
            else the only 2-D one.

    Attributes:
        shape: (N, D) whatever the layout; dtype: numpy dtype; neuron_major: the layout (.npy only).

    Example:
        >>> store = NeuronStore("acts/layer3.neurons.npy")
        >>> x = store.read(0, 512)      # [N, 512] torch tensor, one contiguous read
        >>> NeuronStore("cache.safetensors", key="blocks.6.hook_mlp_out").shape
    """

    sparse = False  # read() returns dense tensors; SparseColumns where True
    nnz = None  # stored entries (sparse stores)
    model = None  # the model the activations come from, where the store says (a delphi cache's config.json)

    def __new__(cls, path=None, key: str | None = None):
        # A folder is a store of several files (a delphi latent cache): NeuronStore(path) opens every
        # format, those too, through the folder formats registered below (io/delphi.py registers its own).
        if cls is NeuronStore and path is not None and Path(path).is_dir():
            for accepts, store_cls in FOLDER_STORES:
                if accepts(path):
                    return object.__new__(store_cls)
            raise ValueError(
                f"activations: {path} is a folder but no store format reads it (a delphi cache holds "
                "<start>_<end>.safetensors shards)"
            )
        return object.__new__(cls)

    def __init__(self, path, key: str | None = None):
        self.path = Path(path)
        self.key = key
        self._sparse = None
        suffix = self.path.suffix.lower()
        if suffix not in FORMATS:
            raise ValueError(f"activations: expected a file of {', '.join(FORMATS)}, got {str(self.path)!r}")
        if not self.path.is_file():
            raise FileNotFoundError(f"activations: no such file: {self.path}")
        self.neuron_major = False
        self.format = {".hdf5": ".h5", ".pth": ".pt"}.get(suffix, suffix)
        if self.format == ".npy":
            self._open_npy()
        elif self.format == ".h5":
            self._open_h5()
        elif self.format == ".safetensors":
            self._open_safetensors()
        elif self.format == ".npz":
            self._open_npz()
        else:
            self._open_pt()
        if self._sparse is not None:
            self.sparse, self.nnz = True, self._sparse.nnz
            self.shape, self.dtype = self._sparse.shape, self._sparse.dtype
        self._stat = _stat(self.path)  # re-checked on every read: a store promises one matrix while read
        if not _numeric(self.dtype) and self._sparse is None:
            raise TypeError(f"activations: {self.path} holds {self.dtype}; expected floats or integers")

    # --- formats --------------------------------------------------------------------------------
    def _open_npy(self) -> None:
        with open(self.path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
            except ValueError as e:
                raise ValueError(f"activations: {self.path} is not a readable .npy file ({e})") from None
            self.offset = f.tell()
        if len(shape) != 2:
            raise ValueError(f"activations: {self.path} holds an array of shape {shape}; expected 2-D")
        if fortran:
            raise ValueError(f"activations: {self.path} is Fortran-ordered; save it C-ordered")
        if dtype.byteorder == ">":
            raise TypeError(f"activations: {self.path} holds big-endian {dtype}; expected little-endian")
        self.dtype = dtype
        self.neuron_major = self.path.name.endswith(NEURON_MAJOR_SUFFIX)
        self.shape = (shape[1], shape[0]) if self.neuron_major else tuple(shape)
        expected = self.offset + math.prod(shape) * dtype.itemsize
        if os.path.getsize(self.path) < expected:
            raise ValueError(f"activations: {self.path} is truncated ({os.path.getsize(self.path)} < {expected} bytes)")

    def _open_h5(self) -> None:
        h5py = optional("h5py", "hdf5", ".h5")
        with h5py.File(self.path, "r") as f:
            found = []
            f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
            self.key = pick_key(self.key, {k: f[k].shape for k in found}, self.path)
            ds = f[self.key]
            if len(ds.shape) != 2:
                raise ValueError(
                    f"activations: {self.path} dataset {self.key!r} has shape {tuple(ds.shape)}; expected 2-D [N, D]"
                )
            self.shape, self.dtype = tuple(ds.shape), np.dtype(ds.dtype)

    def _open_safetensors(self) -> None:
        safetensors = optional("safetensors", "safetensors", ".safetensors")
        try:
            with safetensors.safe_open(str(self.path), framework="pt") as f:
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
                dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
        except Exception as e:  # noqa: BLE001  (a truncated or foreign file: one line naming it)
            raise ValueError(f"activations: cannot read {self.path} as safetensors: {str(e).splitlines()[0]}") from None
        self.key = pick_key(self.key, shapes, self.path)
        self.shape = shapes[self.key]
        if len(self.shape) != 2:
            raise ValueError(
                f"activations: {self.path} tensor {self.key!r} has shape {self.shape}; expected 2-D [N, D]"
            )
        self.dtype = _as_dtype(_safetensors_dtype(dtypes[self.key]))

    def _open_pt(self) -> None:
        try:
            obj = torch.load(self.path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:  # noqa: BLE001  (any unreadable file: one line naming it)
            raise ValueError(f"activations: cannot read {self.path}: {str(e).splitlines()[0]}") from None
        if isinstance(obj, torch.Tensor):
            tensors = {"": obj}
        elif isinstance(obj, dict):
            tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
            if not tensors:
                raise TypeError(
                    f"activations: {self.path} holds a dict without tensors (keys {sorted(map(str, obj))[:5]}); "
                    "expected a tensor or a dict of tensors"
                )
        else:
            raise TypeError(
                f"activations: {self.path} holds a {type(obj).__name__}; expected a tensor or a dict of tensors"
            )
        key = (
            pick_key(self.key, {k: tuple(v.shape) for k, v in tensors.items()}, self.path)
            if self.key or len(tensors) > 1
            else next(iter(tensors))
        )
        self.key = key or None
        self._tensor = tensors[key]
        if self._tensor.layout != torch.strided:
            self._sparse = as_sparse(self._tensor, f"activations ({self.path})")
            return
        if self._tensor.dim() != 2:
            raise ValueError(
                f"activations: {self.path} holds a tensor of shape {tuple(self._tensor.shape)}; expected 2-D"
            )
        self.shape = tuple(self._tensor.shape)
        self.dtype = _as_dtype(self._tensor.dtype)

    def _open_npz(self) -> None:
        import scipy.sparse

        if self.key is not None:
            raise ValueError(f"activations: {self.path} is a scipy sparse matrix, it has no keys; got key {self.key!r}")
        try:
            m = scipy.sparse.load_npz(self.path)
        except Exception as e:  # noqa: BLE001  (not a save_npz file: one line naming it)
            raise ValueError(
                f"activations: cannot read {self.path} as a scipy.sparse .npz (save_npz): {str(e).splitlines()[0]}"
            ) from None
        self._sparse = as_sparse(m, f"activations ({self.path})")

    def __repr__(self) -> str:
        if self.sparse:
            return f"NeuronStore({str(self.path)!r}, {self.shape[0]} samples x {self.shape[1]} neurons, sparse, nnz {self.nnz})"
        layout = "neuron-major" if self.neuron_major else "sample-major"
        key = f", key {self.key!r}" if self.key else ""
        return f"NeuronStore({str(self.path)!r}{key}, {self.shape[0]} samples x {self.shape[1]} neurons, {layout})"

    def slice(self, d0: int, d1: int) -> NeuronSlice:
        """Neurons d0:d1 as a store of their own (nothing read yet): explain reads it in its own batches."""
        return NeuronSlice(self, d0, d1)

    def read(self, d0: int, d1: int, max_buffer: int = 2**23) -> torch.Tensor:
        """Neurons d0:d1 of every sample as an [N, d1 - d0] tensor (a transposed view for neuron-major files).

        Sample-major .npy files are read in blocks of whole rows of at most `max_buffer` bytes.
        """
        n, d = self.shape
        d0, d1 = max(0, d0), min(d, d1)
        if _stat(self.path) != self._stat:
            raise ValueError(
                f"activations: {self.path} changed (size or modification time) after the store was opened as "
                f"[{n}, {d}]; open it again"
            )
        if self._sparse is not None:
            return self._sparse.columns(d0, d1)
        if self.format == ".h5":
            h5py = optional("h5py", "hdf5", ".h5")
            with h5py.File(self.path, "r") as f:
                ds = f[self.key] if self.key in f else None
                if ds is None or tuple(ds.shape) != self.shape:
                    got = "no such dataset" if ds is None else f"shape {tuple(ds.shape)}"
                    raise ValueError(
                        f"activations: {self.path} dataset {self.key!r} was [{n}, {d}] when opened, now {got}; "
                        "open it again"
                    )
                return torch.from_numpy(np.ascontiguousarray(ds[:, d0:d1]))
        if self.format == ".safetensors":
            safetensors = optional("safetensors", "safetensors", ".safetensors")
            with safetensors.safe_open(str(self.path), framework="pt") as f:
                return f.get_slice(self.key)[:, d0:d1].contiguous()
        if self.format == ".pt":
            return self._tensor[:, d0:d1].contiguous()
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


class NeuronSlice:
    """Neurons d0:d1 of a NeuronStore, read on demand: .shape (N, d1 - d0), .dtype, .read(a, b) (neurons
    d0 + a : d0 + b). The runner hands chunks to explain this way, so a chunk is never read whole and
    explain's batches stay within its memory budget."""

    def __init__(self, store: NeuronStore, d0: int, d1: int):
        n, d = store.shape
        self.store, self.d0, self.d1 = store, max(0, d0), min(d, d1)
        self.shape = (n, self.d1 - self.d0)
        self.dtype = store.dtype
        self.sparse = store.sparse
        self.model = store.model
        # Sparse: the stored entries this slice is expected to hold (for batch sizes and hashing pieces).
        self.nnz = None if store.nnz is None else -(-store.nnz * self.shape[1] // max(d, 1))

    def read(self, a: int, b: int):
        a, b = max(0, a), min(self.shape[1], b)
        return self.store.read(self.d0 + a, self.d0 + b)

    def __repr__(self) -> str:
        return f"{self.store!r}[:, {self.d0}:{self.d1}]"


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _as_dtype(t: torch.dtype):
    """The numpy dtype of a torch dtype; torch.bfloat16 itself (numpy has none)."""
    return t if t == torch.bfloat16 else np.dtype(torch.empty(0, dtype=t).numpy().dtype)


def _numeric(dtype) -> bool:
    if isinstance(dtype, torch.dtype):
        return dtype.is_floating_point
    return dtype.kind in "fiu"


def optional(module: str, extra: str, suffix: str):
    """Import an optional dependency, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"reading {suffix} files needs the package {module}: pip install 'invert_fast[{extra}]'"
        ) from None


def pick_key(key: str | None, shapes: dict, path) -> str:
    """The entry to read: `key` if given, else `Y` when present, else the only 2-D entry."""
    if key is not None:
        if key not in shapes:
            raise KeyError(f"activations: {path} has no entry {key!r} (has {sorted(shapes)})")
        return key
    if "Y" in shapes:
        return "Y"
    two_d = [k for k, s in shapes.items() if len(s) == 2]
    if len(two_d) != 1:
        raise ValueError(
            f"activations: {path} holds {sorted(shapes)}; pick one with key= (--activations-key), or name it Y"
        )
    return two_d[0]


def _safetensors_dtype(name: str) -> torch.dtype:
    table = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
             "I8": torch.int8, "I16": torch.int16, "I32": torch.int32, "I64": torch.int64, "U8": torch.uint8}  # fmt: skip
    if name not in table:
        raise TypeError(f"activations: safetensors dtype {name} is not supported; expected floats or integers")
    return table[name]


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
    if store.format != ".npy":
        raise ValueError(
            f"src: transpose converts a sample-major .npy; {src} is a {store.format} store, which explain already "
            "reads by neuron slices"
        )
    if store.neuron_major:
        raise ValueError(f"src: {src} is already neuron-major")
    dst = Path(dst) if dst is not None else store.path.with_name(store.path.name[: -len(".npy")] + NEURON_MAJOR_SUFFIX)
    if not dst.name.endswith(NEURON_MAJOR_SUFFIX):
        raise ValueError(f"dst: a neuron-major store must be named *{NEURON_MAJOR_SUFFIX}, got {dst.name}")
    n, d = store.shape
    item = store.dtype.itemsize
    side = max(1, int(math.isqrt(max(1, max_memory // (2 * item)))))  # tile + its transpose fit
    dst.parent.mkdir(parents=True, exist_ok=True)  # as every other writer: a missing folder is created
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
