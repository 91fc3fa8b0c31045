"""Concepts that are functions of a categorical code per sample (a token id, the previous token's id, a
position bucket): ids [N, C] and one 0/1 table [V_c, K_c] per id column, never an [N, K] matrix.

The concept vector of sample n is the concatenation over columns c of table_c[ids[n, c]], so samples
with equal id tuples share a region: regions are built from the distinct tuples (at most N, usually
far fewer) in O(N C + T K) memory for T distinct tuples, and numbered as core.regions numbers the
dense twin's (by ascending hash of the packed concept vector), so every result is the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .bits import pack_bits
from .regions import Regions, compute_regions, group_rows, regions_from_groups
from .validate import as_integers, check_samples, to_tensor

_ROWS_BLOCK = 1 << 16  # distinct tuples packed at a time: bounds the [block, K] bool temporary


class IdConcepts:
    """ids [N, C] int64 and one [V_c, K_c] bool table per id column (concepts: the tables' columns in order)."""

    def __init__(self, ids: torch.Tensor, tables: list[torch.Tensor]):
        self.ids, self.tables = ids, tables
        self.n = int(ids.shape[0])
        self.k = sum(int(t.shape[1]) for t in tables)
        self._tuples = None

    @classmethod
    def build(cls, ids, table) -> IdConcepts:
        """Validated from user input: ids [N] or [N, C] integers; table [V, K] 0/1, or a sequence of C
        tables (one per id column)."""
        x = as_integers(ids, "ids")
        if x.dim() == 1:
            x = x.unsqueeze(1)
        if x.dim() != 2:
            raise ValueError(f"ids: expected [N] or [N, C] integer codes, got shape {tuple(x.shape)}")
        check_samples(x.shape[0], "ids")
        c = x.shape[1]
        if isinstance(table, torch.Tensor | np.ndarray) or not isinstance(table, Sequence):
            tabs = [table]
        else:
            tabs = list(table)
            if c == 1 and tabs and not isinstance(tabs[0], torch.Tensor | np.ndarray) and np.ndim(tabs[0]) == 1:
                tabs = [table]  # a nested list of rows is one [V, K] table
        if len(tabs) != c:
            raise ValueError(f"table: expected one [V, K] table per id column ({c}), got {len(tabs)}")
        out = []
        for j, t in enumerate(tabs):
            name = "table" if c == 1 else f"table[{j}]"
            tt = to_tensor(t, name)
            if tt.dim() != 2:
                raise ValueError(f"{name}: expected a 2-D 0/1 matrix [V ids, K concepts], got shape {tuple(tt.shape)}")
            if tt.dtype != torch.bool:
                if tt.is_complex():
                    raise TypeError(f"{name}: expected 0/1 values, got complex dtype {tt.dtype}")
                bad = (tt != 0) & (tt != 1)
                if bool(bad.any()):
                    pos = tuple(int(i) for i in bad.nonzero()[0])
                    raise ValueError(f"{name}: expected only 0 and 1, got {tt[pos].item()!r} at (id, concept) {pos}")
                tt = tt != 0
            out.append(tt)
        x = x.long() if x.dtype != torch.uint64 else x.view(torch.int64)
        for j, tt in enumerate(out):
            col, v = x[:, j], tt.shape[0]
            bad = (col < 0) | (col >= v)
            if bool(bad.any()):
                n0 = int(bad.nonzero()[0])
                where = f"ids[{n0}]" if c == 1 else f"ids[{n0}, {j}]"
                raise ValueError(
                    f"ids: {where} = {int(col[n0])} is outside the table's ids [0, {v}) "
                    f"({int(bad.sum())} sample(s) in all)"
                )
        return cls(x.contiguous(), [t.to(x.device) for t in out])

    @property
    def device(self) -> torch.device:
        return self.ids.device

    def to(self, device) -> IdConcepts:
        return IdConcepts(self.ids.to(device), [t.to(device) for t in self.tables])

    def select(self, positions: list[int]) -> IdConcepts:
        """The concepts at these positions (any order, repeats allowed): one id column and table per run
        of consecutive picks from the same table."""
        owner = [(j, c) for j, t in enumerate(self.tables) for c in range(t.shape[1])]
        cols, merged = [], []
        for p in positions:
            j, c = owner[p]
            piece = self.tables[j][:, c : c + 1]
            if cols and cols[-1] == j:
                merged[-1] = torch.cat([merged[-1], piece], 1)
            else:
                cols.append(j)
                merged.append(piece)
        if not cols:
            return IdConcepts(self.ids[:, :1], [self.tables[0][:, :0]])
        return IdConcepts(self.ids[:, cols].contiguous(), merged)

    def tuples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(distinct id tuples [T, C], tuple of each sample [N]); cached."""
        if self._tuples is None:
            if self.ids.shape[1] == 1:
                uniq, inv = torch.unique(self.ids[:, 0], return_inverse=True)
                self._tuples = (uniq.unsqueeze(1), inv)
            else:
                self._tuples = torch.unique(self.ids, dim=0, return_inverse=True)
        return self._tuples

    def vectors(self, tuples: torch.Tensor) -> torch.Tensor:
        """[T, K] bool concept vectors of id tuples [T, C]."""
        return torch.cat([t[tuples[:, j]] for j, t in enumerate(self.tables)], 1)

    def packed_rows(self, tuples: torch.Tensor) -> torch.Tensor:
        """[T, ceil(K / 64)] int64 packed concept vectors of id tuples (the layout of ops.bits_transpose)."""
        parts = [pack_bits(self.vectors(tuples[s : s + _ROWS_BLOCK])) for s in range(0, tuples.shape[0], _ROWS_BLOCK)]
        return torch.cat(parts) if parts else torch.zeros(0, (self.k + 63) // 64, dtype=torch.int64)

    def counts(self) -> torch.Tensor:
        """[K] int64 samples in each concept: per column, the id counts times the table."""
        out = []
        for j, t in enumerate(self.tables):
            per_id = torch.bincount(self.ids[:, j], minlength=t.shape[0])
            out.append((per_id.unsqueeze(1) * t).sum(0))
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64, device=self.device)

    def bits(self) -> torch.Tensor:
        """[K, ceil(N / 64)] int64 packed masks (the dense twin's; N K / 8 bytes)."""
        from .. import ops

        uniq, inv = self.tuples()
        return ops.bits_transpose(self.packed_rows(uniq)[inv], self.k)

    def regions(self) -> Regions:
        """Regions of the distinct tuples' concept vectors, numbered as compute_regions numbers the dense twin's."""
        if self.k == 0:
            return compute_regions(torch.zeros(0, (self.n + 63) // 64, dtype=torch.int64, device=self.device), self.n)
        uniq, inv = self.tuples()
        rows = self.packed_rows(uniq)  # [T, J]
        tuple_region = group_rows(rows)
        region_of = tuple_region[inv]
        return regions_from_groups(region_of, self.n, self.k, lambda reps: rows[inv[reps]], self.bits)
