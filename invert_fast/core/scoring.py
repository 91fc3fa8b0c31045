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


def concept_metrics(activations, concepts, alpha: float | str = 0.005, max_memory: int = 2**28) -> dict:
    """Every objective's value for every neuron and every concept: the matrices a meta-evaluation ranks
    (NeuronEval's Meta-AUPRC) and the single-concept view of the labels' columns.

    Args:
        activations: [N, D] tensor or array, or sparse (entries not stored are 0.0).
        concepts: ConceptSet or [N, K] 0/1 matrix.
        alpha: T's share, or "support" (core/objectives.top_samples): IoU, F1 and AUPRC measure against T.
        max_memory: bytes of unpacked concept masks held at a time (neurons run in blocks).

    Returns:
        {"auroc": [D, K], "iou", "f1", "auprc", "correlation", "cosine"}: float64 on the CPU, with the
        definitions of core/auroc.auroc and core/metrics.py (NaN where a metric is undefined).

    Example:
        >>> m = concept_metrics(acts, concepts, alpha=0.01)
        >>> m["f1"].shape
        torch.Size([D, K])
    """
    from .metrics import METRICS, label_stats
    from .objectives import check_alpha
    from .order import packed_rows
    from .sparse import activation_columns, as_activation_input
    from .validate import check_positive_int

    alpha = check_alpha(alpha)
    max_memory = check_positive_int(max_memory, "max_memory")
    x = as_activation_input(activations)
    cs = concepts if isinstance(concepts, ConceptSet) else ConceptSet(concepts)
    n, d = x.shape
    if cs.n_samples != n:
        raise ValueError(f"concepts: expected {n} samples (rows of activations), got a concept set over {cs.n_samples}")
    cs = cs.to(x.device)
    regions = cs.regions()
    words = packed_rows(regions.membership_bool)  # [K, W]: each concept's regions
    k = words.shape[0]
    out = {"auroc": auroc(x, cs).cpu()}
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in METRICS}
    step = max(1, min(d, max_memory // max(1, 33 * k * regions.num_regions)))
    for d0 in range(0, d, step):
        xb = activation_columns(x, d0, min(d, d0 + step))
        stats = label_stats(xb, words.unsqueeze(0).expand(xb.shape[1], k, -1), regions, alpha, max_memory=max_memory)
        for name, fn in METRICS.items():
            parts[name].append(fn(stats))
    for name in METRICS:
        out[name] = torch.cat(parts[name]) if parts[name] else torch.zeros(0, k, dtype=torch.float64)
    return out
