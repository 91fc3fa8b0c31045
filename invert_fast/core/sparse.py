"""Sparse activations: [N, D] matrices that store only their nonzeros, neuron by neuron (CSC).

SAE latents and ReLU-like neurons are zero on most samples. Every entry not stored is the value 0.0,
tied with stored zeros and ranked with them (below the positives, above the negatives), so a sparse
matrix gives exactly the ranks, rank sums, labels and p-values of its dense twin; only the stored
entries are sorted (ops.sparse_rank_doubled) and a region's rank sum is the sum over its stored
entries plus its zero count times the zeros' shared rank: O(nnz log nnz + G) per neuron, not
O(N log N).

Accepted wherever activations are: torch sparse tensors (COO, CSR, CSC), scipy.sparse matrices and
arrays, and SparseColumns itself. Duplicate coordinates are an error (not summed).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import ops
from .validate import as_activations, as_integers, as_rankable, check_columns, check_samples, to_tensor

_TORCH_SPARSE = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc)


class SparseColumns:
    """[N, D] activations as their stored entries, column (neuron) by column.

    Attributes:
        indptr: [D + 1] int64, column d's entries at indptr[d] .. indptr[d + 1].
        indices: [nnz] int64 samples, strictly increasing within a column.
        values: [nnz] float16/bfloat16/float32/float64.
        shape: (N, D).

    Build with SparseColumns.from_coo (any order, duplicates rejected) or as_sparse (torch / scipy
    sparse input).

    Example:
        >>> sc = SparseColumns.from_coo([0, 2], [1, 1], [0.5, -1.0], (3, 2))
        >>> sc.nnz, sc.dense().tolist()
        (2, [[0.0, 0.5], [0.0, 0.0], [0.0, -1.0]])
    """

    def __init__(self, indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, shape, first: int = 0):
        """Trusted parts (from_coo and the stores check them); `first` numbers column 0 in errors."""
        self.indptr, self.indices, self.values = indptr, indices, values
        self.shape = (int(shape[0]), int(shape[1]))
        self.first = int(first)

    @property
    def nnz(self) -> int:
        return int(self.indices.numel())

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        return self.values.device

    def __repr__(self) -> str:
        n, d = self.shape
        return f"SparseColumns([{n}, {d}], nnz={self.nnz}, {self.dtype}, {self.device})"

    @classmethod
    def from_coo(cls, rows, cols, values, shape, name: str = "activations", first: int = 0) -> SparseColumns:
        """From (row, column, value) triples in any order.

        Args:
            rows, cols: [nnz] integer sample and neuron of each entry; values: [nnz] real numbers;
            shape: (N, D). name: the argument named in errors. first: the layer-wide number of column 0
            (errors name neuron first + column).

        Raises:
            ValueError: an index outside the shape, a coordinate given twice (never summed), a negative
                shape, or a column count whose index alone would not fit in memory.
        """
        n, d = int(shape[0]), int(shape[1])
        check_samples(n, name)
        check_columns(d, name)
        r, c, v = as_integers(rows, f"{name} rows"), as_integers(cols, f"{name} columns"), _as_tensor(values, name)
        if not (r.dim() == c.dim() == v.dim() == 1 and r.numel() == c.numel() == v.numel()):
            raise ValueError(
                f"{name}: expected rows, columns and values of one length, got shapes "
                f"{tuple(r.shape)}, {tuple(c.shape)} and {tuple(v.shape)}"
            )
        v = as_rankable(v, name)
        r, c = r.long(), c.long()
        if r.numel():
            for what, t, size in (("sample", r, n), ("neuron", c, d)):
                lo, hi = int(t.min()), int(t.max())
                if lo < 0 or hi >= size:
                    e = int(((t < 0) | (t >= size)).nonzero()[0])
                    shown = int(t[e]) + (first if what == "neuron" else 0)
                    bound = f"[{first}, {first + size})" if what == "neuron" and first else f"[0, {size})"
                    raise ValueError(f"{name}: entry {e} has {what} index {shown}, outside {bound} of shape {shape}")
        key = c * n + r  # < D N <= 2^63 for any shape torch can hold
        order = _column_order(key, c, d)
        if order is not None:
            key = key[order]
        if key.numel() > 1:
            dup = (key[1:] == key[:-1]).nonzero()
            if dup.numel():
                i = int(dup[0])
                a, b = (i, i + 1) if order is None else sorted((int(order[i]), int(order[i + 1])))
                raise ValueError(
                    f"{name}: entries {a} and {b} both store (sample {int(r[a])}, neuron {int(c[a]) + first}); duplicate "
                    "coordinates are not summed, remove them (or coalesce first)"
                )
        indptr = torch.zeros(d + 1, dtype=torch.int64, device=v.device)
        indptr[1:] = torch.cumsum(torch.bincount(c, minlength=d), 0)
        return cls(indptr, (key % n) if n else key, (v if order is None else v[order]).contiguous(), (n, d), first)

    def columns(self, d0: int, d1: int) -> SparseColumns:
        """Neurons d0 .. d1 - 1 as their own SparseColumns (entries shared, not copied)."""
        d1 = min(d1, self.shape[1])
        lo, hi = int(self.indptr[d0]), int(self.indptr[d1])
        return SparseColumns(
            self.indptr[d0 : d1 + 1] - lo, self.indices[lo:hi], self.values[lo:hi], (self.shape[0], d1 - d0),
            self.first + d0,
        )  # fmt: skip

    def select_rows(self, rows: torch.Tensor) -> SparseColumns:
        """The samples rows ([M] int64, strictly increasing) as their own SparseColumns, renumbered 0 .. M - 1
        (a train / held-out split of the samples)."""
        new = torch.full((self.shape[0],), -1, dtype=torch.int64, device=self.device)
        new[rows.to(self.device)] = torch.arange(rows.numel(), device=self.device)
        at = new[self.indices]
        keep = at >= 0
        counts = torch.zeros(self.shape[1], dtype=torch.int64, device=self.device).index_add_(
            0, self.column_of_entries()[keep], torch.ones(int(keep.sum()), dtype=torch.int64, device=self.device)
        )
        indptr = torch.zeros(self.shape[1] + 1, dtype=torch.int64, device=self.device)
        indptr[1:] = torch.cumsum(counts, 0)
        return SparseColumns(indptr, at[keep], self.values[keep], (rows.numel(), self.shape[1]), self.first)

    def to(self, device) -> SparseColumns:
        device = torch.device(device)
        if device == self.device:
            return self
        return SparseColumns(
            self.indptr.to(device), self.indices.to(device), self.values.to(device), self.shape, self.first
        )

    def column_of_entries(self) -> torch.Tensor:
        """[nnz] int64 column of every stored entry."""
        return torch.repeat_interleave(
            torch.arange(self.shape[1], device=self.device), self.indptr.diff(), output_size=self.nnz
        )

    def dense(self) -> torch.Tensor:
        """[N, D] dense tensor (for small matrices and tests)."""
        out = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        out[self.indices, self.column_of_entries()] = self.values
        return out

    def ranks(self) -> SparseRanks:
        """Doubled mid-ranks of the stored entries, the zeros' rank and the tie terms (ops.sparse_rank_doubled)."""
        r, z, t = ops.sparse_rank_doubled(self.indptr, self.indices, self.values, self.shape[0], self.first)
        return SparseRanks(self, r, z, t)


class SparseRanks:
    """The doubled mid-ranks of a SparseColumns: ranks [nnz] int32 of its stored entries, zero_ranks [D]
    int64 of its zeros, ties [D] float64 tie terms."""

    def __init__(self, x: SparseColumns, ranks, zero_ranks, ties):
        self.x, self.ranks, self.zero_ranks, self.ties = x, ranks, zero_ranks, ties
        self._col = None  # [nnz] column of every entry: computed once, reused by every permutation

    @property
    def device(self) -> torch.device:
        return self.ranks.device

    def region_sums(self, region_of: torch.Tensor, sizes: torch.Tensor, perm: torch.Tensor | None = None):
        """[G, D] int64 doubled rank sums per region (region_of [N] int64, sizes [G] int64): each region's
        size times the zeros' rank, plus (rank - zero rank) of every stored entry in it. With perm [N],
        sample n takes the ranks of sample perm[n] (the stored entry of sample m counts in the region of
        inv[m]). Integer sums: the same on every device and in any order."""
        n, d = self.x.shape
        out = sizes.unsqueeze(1) * self.zero_ranks.unsqueeze(0)  # [G, D]
        if self.x.nnz:
            if self._col is None:
                self._col = self.x.column_of_entries()
            col = self._col
            rows = self.x.indices
            if perm is not None:
                inv = torch.empty_like(perm)
                inv[perm] = torch.arange(n, device=perm.device)
                rows = inv[rows]
            target = region_of[rows] * d + col
            out.view(-1).index_add_(0, target, self.ranks.long() - self.zero_ranks[col])
        return out


def is_sparse(obj) -> bool:
    """A sparse activation matrix: SparseColumns, a torch sparse tensor or a scipy.sparse matrix/array."""
    if isinstance(obj, SparseColumns):
        return True
    if isinstance(obj, torch.Tensor):
        return obj.layout != torch.strided  # BSR / BSC too: as_sparse names them (not read as dense)
    return _is_scipy_sparse(obj)


def _is_scipy_sparse(obj) -> bool:
    mod = type(obj).__module__
    if not mod.startswith("scipy.sparse"):
        return False
    import scipy.sparse

    return scipy.sparse.issparse(obj)


def as_sparse(obj, name: str = "activations") -> SparseColumns:
    """SparseColumns from a torch sparse tensor (COO, CSR, CSC), a scipy.sparse matrix or array, or
    SparseColumns (returned as is). Shape [N samples, D neurons]."""
    if isinstance(obj, SparseColumns):
        return obj
    if isinstance(obj, torch.Tensor):
        if obj.dim() != 2:
            raise ValueError(
                f"{name}: expected a 2-D sparse tensor [N samples, D neurons], got shape {tuple(obj.shape)}"
            )
        if obj.layout == torch.sparse_coo:
            if obj.dense_dim() != 0:
                raise ValueError(
                    f"{name}: expected a sparse COO tensor without dense dimensions, got {obj.dense_dim()}"
                )
            # _indices/_values: the stored entries as given (coalesce would sum duplicates).
            idx, vals = obj._indices(), obj._values()
            return SparseColumns.from_coo(idx[0], idx[1], vals, obj.shape, name)
        if obj.layout in (torch.sparse_csr, torch.sparse_csc):
            csr = obj.layout == torch.sparse_csr
            ptr = obj.crow_indices() if csr else obj.ccol_indices()
            idx, vals = (obj.col_indices() if csr else obj.row_indices()), obj.values()
            _check_pointers(ptr, idx.numel(), "row" if csr else "column", name)
            outer = torch.repeat_interleave(torch.arange(ptr.numel() - 1, device=ptr.device), ptr.diff())
            rows, cols = (outer, idx) if csr else (idx, outer)
            return SparseColumns.from_coo(rows, cols, vals, obj.shape, name)
        raise TypeError(f"{name}: expected a sparse COO, CSR or CSC tensor, got layout {obj.layout}")
    if _is_scipy_sparse(obj):
        if len(obj.shape) != 2:
            raise ValueError(f"{name}: expected a 2-D scipy.sparse matrix [N, D], got shape {obj.shape}")
        coo = obj.tocoo()  # keeps duplicate entries: from_coo reports them
        return SparseColumns.from_coo(
            np.asarray(coo.row, dtype=np.int64),
            np.asarray(coo.col, dtype=np.int64),
            np.asarray(coo.data),
            obj.shape,
            name,
        )
    raise TypeError(f"{name}: expected a sparse tensor or scipy.sparse matrix, got {type(obj).__name__}")


def _check_pointers(ptr: torch.Tensor, nnz: int, what: str, name: str) -> None:
    """A compressed layout's pointers: from 0 to nnz, never decreasing (else repeat_interleave fails deep inside)."""
    if ptr.dim() != 1 or ptr.numel() < 1 or int(ptr[0]) != 0 or int(ptr[-1]) != nnz:
        got = f"{int(ptr[0])} .. {int(ptr[-1])}" if ptr.dim() == 1 and ptr.numel() else f"shape {tuple(ptr.shape)}"
        raise ValueError(f"{name}: expected {what} pointers running from 0 to nnz = {nnz}, got {got}")
    step = ptr.diff()
    if bool((step < 0).any()):
        i = int((step < 0).nonzero()[0])
        raise ValueError(
            f"{name}: {what} pointers must not decrease, got {int(ptr[i])} then {int(ptr[i + 1])} at {what} {i}"
        )


def _column_order(key: torch.Tensor, cols: torch.Tensor, d: int) -> torch.Tensor | None:
    """The stable order that sorts entries by key = (column, row): None when they already are (a
    neuron-major file); a stable sort by column when that suffices (rows already increase within each
    column, as in a token-major cache: numpy's radix sort for small column numbers, O(nnz)); else a
    full sort of the keys."""
    if key.numel() < 2 or bool((key[1:] >= key[:-1]).all()):
        return None
    if d <= 2**16:
        order = (
            torch.from_numpy(np.argsort(cols.numpy().astype(np.uint16), kind="stable"))
            if cols.device.type == "cpu"
            else None
        )
        if order is not None:
            k2 = key[order]
            if bool((k2[1:] >= k2[:-1]).all()):
                return order
    return torch.argsort(key, stable=True)


def _as_tensor(t, name: str) -> torch.Tensor:
    """A real-number tensor of triples' parts (validate.to_tensor's conversion; complex refused here)."""
    if isinstance(t, torch.Tensor):
        return t
    arr = np.asarray(t)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers, got an array of dtype {arr.dtype}")
    return to_tensor(arr, name)


def as_activation_input(activations, name: str = "activations"):
    """SparseColumns for sparse input (is_sparse), else the dense [N, D] tensor of validate.as_activations."""
    if is_sparse(activations):
        x = as_sparse(activations, name)
        check_samples(x.shape[0], name)
        return x
    return as_activations(activations, name)


def activation_columns(x, d0: int, d1: int):
    """Neurons d0 .. d1 - 1 of dense [N, D] or SparseColumns activations."""
    return x.columns(d0, d1) if isinstance(x, SparseColumns) else x[:, d0:d1]
