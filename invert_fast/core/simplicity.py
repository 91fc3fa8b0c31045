"""Simplicity against precision: how a layer's best labels gain with each extra atom (INVERT's paper,
the trade-off between a label's length L and its AUC), on the data the labels were chosen on and on data
they were not.

For l = 1, ..., L: the best AUC of each unit among formulas of at most l atoms, which is the top of the
beam after step l of the length-L search (the beam search is deterministic step by step, so the search
with L = l stops exactly there); and the held-out AUC of that label when it is found on one half of the
samples and scored (score_each) on the other. An extra atom *improves* a unit's label when its held-out
AUC rises: on the samples it was chosen on, a longer formula can only match or beat a shorter one, so
the gain there says nothing about whether the atom is real; on the other half, an atom that only fits
noise lowers the AUC or leaves it unchanged. It improves *significantly* when the held-out rise exceeds
1.96 standard errors of the difference, each AUC's standard error by Hanley & McNeil (1982) from its
held-out mask sizes, combined as if the two AUCs were independent — conservative, since both are
computed from the same activations and are positively correlated (and approximate where activations
tie).

Example:
    >>> sp = simplicity_precision(acts["hidden"], concepts, L=3, layer="hidden")
    >>> print(sp.text())
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .concepts import ConceptSet
from .scoring import score_each
from .search import explain
from .validate import as_activations, check_positive_int


@dataclass
class SimplicityPrecision:
    """Per length l = 1..L, every unit's best AUC and the held-out AUC of its label.

    Attributes:
        layer: the layer's name; lengths: [1, ..., L].
        best_auc: [L, D] float64 best AUC over all samples with at most l atoms (NaN: no admissible label).
        held_out: [L, D] float64 AUC on the held-out half of the label found on the fitting half.
        held_pos: [L, D] int64 held-out samples inside that label's mask (its size there; 0 without label).
        n_fit, n_held: samples in the two halves; split: how they were drawn.

    Example:
        >>> sp.rows()[1]["share improved held out"]     # the share of units a second atom helps
    """

    layer: str
    lengths: list[int]
    best_auc: np.ndarray
    held_out: np.ndarray
    held_pos: np.ndarray
    n_fit: int
    n_held: int
    split: str

    def rows(self) -> list[dict]:
        """One dict per length: median best AUC, median held-out AUC, and (from l = 2) over units with a
        label at both lengths: the share whose held-out AUC rises with the extra atom, the share where it
        rises significantly (module docstring), and the median held-out gain."""
        out = []
        for i, length in enumerate(self.lengths):
            row = {
                "layer": self.layer,
                "L": length,
                "median best AUC": float(np.nanmedian(self.best_auc[i])),
                "median held-out AUC": float(np.nanmedian(self.held_out[i])),
                "share improved held out": float("nan"),
                "share improved significantly": float("nan"),
                "median held-out gain": float("nan"),
            }
            if i:
                a, b = self.held_out[i - 1], self.held_out[i]
                both = np.isfinite(a) & np.isfinite(b)
                if both.any():
                    se = np.hypot(
                        auc_standard_error(a[both], self.held_pos[i - 1][both], self.n_held),
                        auc_standard_error(b[both], self.held_pos[i][both], self.n_held),
                    )
                    row["share improved held out"] = float((b[both] > a[both]).mean())
                    row["share improved significantly"] = float((b[both] - a[both] > 1.96 * se).mean())
                    row["median held-out gain"] = float(np.median(b[both] - a[both]))
            out.append(row)
        return out

    def text(self) -> str:
        """The rows as a Markdown table."""
        lines = [
            f"{self.layer}: labels fitted on {self.n_fit:,} samples, held out on {self.n_held:,} ({self.split})",
            "| L | median best AUC | median held-out AUC | improved held out | significantly | median held-out gain |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        pct = lambda v: "" if np.isnan(v) else f"{v:.0%}"  # noqa: E731
        for r in self.rows():
            gain = "" if np.isnan(r["median held-out gain"]) else f"{r['median held-out gain']:+.4f}"
            lines.append(
                f"| {r['L']} | {r['median best AUC']:.4f} | {r['median held-out AUC']:.4f} | "
                f"{pct(r['share improved held out'])} | {pct(r['share improved significantly'])} | {gain} |"
            )
        return "\n".join(lines)


def simplicity_precision(
    activations,
    concepts,
    *,
    L: int = 3,
    B: int = 5,
    min_fraction: float = 0.0,
    max_fraction: float = 0.5,
    groups=None,
    seed: int = 0,
    layer: str = "",
    max_memory: int | None = None,
) -> SimplicityPrecision:
    """Best and held-out AUC of every unit's label at each length 1..L (module docstring).

    Args:
        activations: [N, D] tensor or array (in memory: the halves are row selections).
        concepts: ConceptSet or [N, K] 0/1 over the N samples.
        L, B, min_fraction, max_fraction, max_memory: the search (explain's).
        groups: [N] ints: the halves are the even- and odd-numbered groups in order of first appearance
            (e.g. sentences: tokens of one text never split); default: a random half of the samples (seed).
        layer: the layer's name for the table.

    Returns:
        SimplicityPrecision.

    Example:
        >>> simplicity_precision(acts, concepts, L=3, B=5, min_fraction=0.02, layer="conv2").rows()
    """
    x = as_activations(activations)
    cs = concepts if isinstance(concepts, ConceptSet) else ConceptSet(concepts)
    n = x.shape[0]
    if cs.n_samples != n:
        raise ValueError(f"concepts: expected {n} samples (rows of activations), got a concept set over {cs.n_samples}")
    check_positive_int(L, "L")
    if groups is not None:
        g = np.asarray(groups.cpu() if isinstance(groups, torch.Tensor) else groups)
        if g.shape != (n,):
            raise ValueError(f"groups: expected [{n}] group ids, got shape {g.shape}")
        _, first, inverse = np.unique(g, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first, kind="stable"), kind="stable")  # group number by first appearance
        fit = order[inverse] % 2 == 0
        split = f"even / odd of {len(first):,} groups"
    else:
        fit = np.zeros(n, dtype=bool)
        fit[np.random.default_rng(seed).permutation(n)[: n // 2]] = True
        split = f"a random half of the samples, seed {seed}"
    tr, te = np.flatnonzero(fit), np.flatnonzero(~fit)
    if len(tr) == 0 or len(te) == 0:
        raise ValueError("groups: both halves need samples (give at least two groups)")
    kw = dict(B=B, min_fraction=min_fraction, max_fraction=max_fraction, max_memory=max_memory)
    c_tr, c_te = cs.select_samples(tr), cs.select_samples(te)
    idx_tr, idx_te = torch.from_numpy(tr), torch.from_numpy(te)
    d = x.shape[1]
    best = np.full((L, d), np.nan)
    held = np.full((L, d), np.nan)
    pos = np.zeros((L, d), dtype=np.int64)
    for i, length in enumerate(range(1, L + 1)):
        res = explain(x, cs, L=length, layer=layer, **kw)
        best[i] = [r[0].auc if len(r) else np.nan for r in res]
        fitted = [r[0].formula if len(r) else None for r in explain(x[idx_tr], c_tr, L=length, **kw)]
        held[i] = score_each(x[idx_te], c_te, fitted).numpy()
        sizes: dict[str, int] = {}
        for k, f in enumerate(fitted):
            if f is not None:
                key = str(f)
                if key not in sizes:
                    sizes[key] = int(f.mask(c_te).sum())
                pos[i, k] = sizes[key]
    return SimplicityPrecision(layer, list(range(1, L + 1)), best, held, pos, len(tr), len(te), split)


def auc_standard_error(auc, positives, n) -> np.ndarray:
    """Hanley & McNeil's (1982) standard error of an AUC from n1 = positives and n2 = n - positives:
    sqrt((A (1 - A) + (n1 - 1)(Q1 - A²) + (n2 - 1)(Q2 - A²)) / (n1 n2)), Q1 = A / (2 - A), Q2 = 2A² / (1 + A).

    Example:
        >>> auc_standard_error(np.array([0.8]), np.array([100]), 1000)
        array([0.02...])
    """
    a = np.asarray(auc, dtype=np.float64)
    n1 = np.asarray(positives, dtype=np.float64)
    n2 = n - n1
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))
