"""Exact AUROC of any user formulas for every neuron: the neuron-formula scoring kernel."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .auroc import auroc
from .concepts import ConceptSet
from .formula import Formula


def formula_set(concepts: ConceptSet, formulas: Sequence[Formula | str]) -> ConceptSet:
    """A ConceptSet whose concepts are the masks of the given formulas (evaluated as bit masks)."""
    if isinstance(formulas, str | Formula):
        raise TypeError("formulas: expected a sequence of formulas or formula strings, got a single one")
    parsed = [f if isinstance(f, Formula) else Formula.parse(f, concepts) for f in formulas]
    for f in parsed:
        unknown = f.concepts() - set(concepts.names)
        if unknown:
            raise ValueError(f"formulas: {str(f)!r} uses concepts not in the concept set: {sorted(unknown)}")
    w = concepts.bits.shape[1]
    bits = torch.stack([f.bits(concepts) for f in parsed]) if parsed else torch.zeros(0, w, dtype=torch.int64)
    names = [f"f{i}" for i in range(len(parsed))]
    return ConceptSet.from_bits(bits.to(concepts.device), concepts.n_samples, names, [str(f) for f in parsed])


def score(activations, concepts, formulas: Sequence[Formula | str], **kwargs) -> torch.Tensor:
    """Exact AUROC of every neuron for every formula.

    Args:
        activations: [N, D] tensor or array.
        concepts: ConceptSet or [N, K] 0/1 matrix (names c0, c1, ...).
        formulas: F formulas (Formula or text such as 'sneaker | (sandal & ~boot)').
        **kwargs: passed to invert_fast.core.auroc (method, max_memory).

    Returns:
        [D, F] float64 on the activations' device (NaN where a formula's mask is empty or full).

    Example:
        >>> score(acts, concepts, ["cat | dog", "~car"]).shape
        torch.Size([D, 2])
    """
    cs = concepts if isinstance(concepts, ConceptSet) else ConceptSet(concepts)
    return auroc(activations, formula_set(cs, formulas), **kwargs)
