"""Exact AUROC of any user formulas for every neuron: the neuron-formula scoring kernel."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .auroc import auc_from_rank_sums, auroc
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


def score_each(
    activations, concepts, formulas: Sequence[Formula | str | None], max_memory: int = 2**28
) -> torch.Tensor:
    """Exact AUROC of neuron d for its own formula formulas[d]: the held-out score of a layer's labels.

    score() gives every neuron x every formula ([D, F]); a label is judged only on its own neuron, and
    for a whole layer (D = F = 1,536) that diagonal costs 1/D of the product. Same arithmetic as auroc:
    doubled mid-ranks (ties share their mean), integer rank sums, one division.

    Args:
        activations: [N, D] tensor or array (e.g. the held-out samples of a layer).
        concepts: ConceptSet or [N, K] 0/1 matrix over the same N samples.
        formulas: D formulas (Formula or text), None for a neuron without a label.
        max_memory: bytes for the [N, neurons] ranks and masks of one chunk of neurons.

    Returns:
        [D] float64: NaN where the formula is None or its mask is empty or full.

    Example:
        >>> best = [r[0].formula if r else None for r in explain(x[train], concepts_train, L=3)]
        >>> score_each(x[test], concepts_test, best).nanmedian()
    """
    from .. import ops
    from .validate import as_activations, check_positive_int

    x = as_activations(activations)
    cs = concepts if isinstance(concepts, ConceptSet) else ConceptSet(concepts)
    n, d = x.shape
    if cs.n_samples != n:
        raise ValueError(f"concepts: expected {n} samples (rows of activations), got a concept set over {cs.n_samples}")
    formulas = list(formulas)
    if len(formulas) != d:
        raise ValueError(f"formulas: expected one formula (or None) per neuron ({d}), got {len(formulas)}")
    check_positive_int(max_memory, "max_memory")
    given = [j for j, f in enumerate(formulas) if f is not None]
    masks = formula_set(cs, [formulas[j] for j in given]) if given else None
    out = torch.full((d,), float("nan"), dtype=torch.float64, device=x.device)
    step = max(1, max_memory // (13 * n))  # int32 ranks, bool masks, int64 products per sample and neuron
    for a in range(0, len(given), step):
        cols = given[a : a + step]
        ranks = ops.rank_doubled(x[:, cols]).long()  # [N, c]
        m = torch.stack([masks.mask(i) for i in range(a, a + len(cols))], 1).to(x.device)  # [N, c]
        s2, p = (ranks * m).sum(0), m.sum(0)
        out[cols] = auc_from_rank_sums(s2, p, n)
    return out
