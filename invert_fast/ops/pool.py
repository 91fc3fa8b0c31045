"""The column layout of a beam-search step's pool: the contract between beam_step_select and its callers.

One neuron's pool holds B * 4K candidates and its B current beam formulas (K concepts, 2K atoms:
concept c is atom c, NOT c is atom K + c; op 0 = AND, 1 = OR):

    candidate (beam b, op, atom a)  ->  column (b * 2 + op) * 2K + a
    current beam formula b          ->  column B * 4K + b

The same layout is written once in C++ (csrc/beam_step_select.h: pool_candidate_column,
pool_beam_column), used by the CPU and CUDA kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PoolLayout:
    """Columns of a pool of `beams` beam formulas extended by the atoms of `concepts` concepts.

    Example:
        >>> lay = PoolLayout(beams=2, concepts=3)
        >>> lay.candidate(1, 0, 4), lay.decode(lay.candidate(1, 0, 4)), lay.old(1), lay.width
        (16, (False, 1, 0, 4), 25, 26)
    """

    beams: int
    concepts: int

    @property
    def atoms(self) -> int:
        """2K: every concept and its negation."""
        return 2 * self.concepts

    @property
    def candidates(self) -> int:
        """B * 4K candidate columns; the current beam formulas follow them."""
        return self.beams * 2 * self.atoms

    @property
    def width(self) -> int:
        """All columns of one neuron's pool: B * 4K + B."""
        return self.candidates + self.beams

    def candidate(self, b: int, op: int, a: int) -> int:
        """Column of beam formula b joined with atom a by op (0 AND, 1 OR)."""
        return (b * 2 + op) * self.atoms + a

    def old(self, b: int) -> int:
        """Column of the current beam formula b."""
        return self.candidates + b

    def decode(self, j: int) -> tuple[bool, int, int, int]:
        """(is_old, b, op, a) of one column; op and a are -1 for a current beam formula."""
        if j >= self.candidates:
            return True, j - self.candidates, -1, -1
        b, rem = divmod(j, 2 * self.atoms)
        op, a = divmod(rem, self.atoms)
        return False, b, op, a

    def decode_tensor(self, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """decode() of many columns [M] int64: (is_old [M] bool, b, op, a [M] int64); for current
        beam formulas b is their slot and op, a are -1."""
        is_old = j >= self.candidates
        jj = j.clamp(max=self.candidates - 1)
        b = torch.where(is_old, j - self.candidates, jj // (2 * self.atoms))
        rem = jj % (2 * self.atoms)
        minus = torch.full_like(j, -1)
        return is_old, b, torch.where(is_old, minus, rem // self.atoms), torch.where(is_old, minus, rem % self.atoms)
