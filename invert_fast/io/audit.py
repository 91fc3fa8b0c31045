"""A spurious-correlation audit (INVERT's "finding representations affected by spurious correlations",
Bykov et al. 2023, as a tool): which units respond to a nuisance a user names (a watermark, a patch, a
text overlay), and what the nuisance does to the model's outputs.

1. Units: every unit of the audited layers is labelled by INVERT over audit inputs on which the nuisance
   concept is known (e.g. half of the images carry it, independently of their class). A unit is
   **flagged** when (a) its best label is significant after the search's correction (p_value_search <=
   alpha: a permutation test of the whole search, so the many formulas tried are accounted for) and
   names the nuisance (as an atom, negated or not), and (b) the nuisance alone separates the unit's
   activations strongly: |AUC − 0.5| >= min_effect (default 0.3: AUC >= 0.8 or <= 0.2, "excellent"
   discrimination in Hosmer & Lemeshow's scale), whatever the class. (b) is what tells a unit that
   *encodes* the nuisance from one that merely *sees* it: a visible patch changes the low-level
   features of any model in combination with the garment under it (`Trouser & patch`), which (a) alone
   would flag in a cleanly trained model too. Units meeting (a) only are counted as "sensitive".
2. Outputs: on clean inputs and the same inputs with the nuisance added, the mean change of every
   class's logit and the share of inputs predicted as each class (a shortcut pulls the inputs towards
   its class).
3. Ablation: the flagged units mean-replaced (each by its mean over the clean inputs, position by
   position for conv maps), the accuracy on clean and on nuisance inputs again: if the flagged units
   carry the shortcut, removing them undoes the pull.

Example:
    >>> a = audit(model, x_audit, concepts, "patch", ["features.4", "classifier.1"], output="classifier.2",
    ...           clean=x_test, with_nuisance=x_test_patched, labels=y_test, permutations=99)
    >>> print(a.text())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..core.auroc import auroc
from ..core.concepts import ConceptSet
from ..core.results import Explanation, Explanations
from ..core.search import explain
from .capture import capture, forward_with_hooks, resolve_layers


@dataclass
class FlaggedUnit:
    """A unit whose significant best label holds the nuisance.

    Attributes:
        layer, unit; label: its best label; auc_alone: AUC of the unit against the nuisance concept alone.

    Example:
        >>> a.flagged[0].layer, a.flagged[0].unit, str(a.flagged[0].label.formula)
    """

    layer: str
    unit: int
    label: Explanation
    auc_alone: float


@dataclass
class Audit:
    """What the audit found (module docstring).

    Attributes:
        nuisance: the concept's name; flagged: FlaggedUnit list; sensitive: units meeting (a) but not
            (b) of the module docstring (FlaggedUnit list); labels: {layer: Explanations}.
        classes: class names; logit_shift: [C] mean change of each logit when the nuisance is added.
        predicted: {"clean", "nuisance", "clean, ablated", "nuisance, ablated"}: [C] share of inputs
            predicted as each class; accuracy: the same keys, the share predicted as their label ({}
            without labels); flipped: {"nuisance": share of inputs whose predicted class the nuisance
            changes, "ablated": the same with the flagged units ablated}.
        alpha: the significance level of the flags.

    Example:
        >>> a.logit_shift.argmax(), a.accuracy["nuisance"], a.accuracy["nuisance, ablated"]
    """

    nuisance: str
    flagged: list[FlaggedUnit]
    sensitive: list[FlaggedUnit]
    labels: dict[str, Explanations]
    classes: list[str]
    logit_shift: np.ndarray
    predicted: dict[str, np.ndarray] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    flipped: dict[str, float] = field(default_factory=dict)
    alpha: float = 0.05
    min_effect: float = 0.3

    def text(self) -> str:
        """A summary: flagged units, the logit shifts, the pull towards a class, the ablation."""
        n_units = sum(len(r) for r in self.labels.values())
        lines = [f"nuisance {self.nuisance!r}: {len(self.flagged)} of {n_units} units flagged (best label significant "
                 f"after the search's correction, p_value_search <= {self.alpha}, naming {self.nuisance!r}; and "
                 f"{self.nuisance!r} alone AUC >= {0.5 + self.min_effect:g} or <= {0.5 - self.min_effect:g}); "
                 f"{len(self.sensitive)} more only sensitive to it (a significant label naming it, alone AUC "
                 f"{min((f.auc_alone for f in self.sensitive), default=float('nan')):.3f} to "
                 f"{max((f.auc_alone for f in self.sensitive), default=float('nan')):.3f})"]  # fmt: skip
        for f in self.flagged:
            lines.append(f"  {f.layer}:{f.unit}: `{f.label.formula}` AUC {f.label.auc:.3f}, p (search) "
                         f"{f.label.p_value_search:.3g}; the nuisance alone AUC {f.auc_alone:.3f}")  # fmt: skip
        order = np.argsort(-self.logit_shift, kind="stable")
        many = len(order) > 12  # e.g. ImageNet's 1,000 logits: the five largest rises and falls
        shown = [*order[:5], *order[-5:]] if many else order
        shifts = ", ".join(f"{self.classes[c]} {self.logit_shift[c]:+.2f}" for c in shown)
        lines.append(f"adding the nuisance changes the mean logits by: {shifts}"
                     + (f" (the 5 largest rises and falls of {len(order)})" if many else ""))  # fmt: skip
        pull = self.predicted["nuisance"] - self.predicted["clean"]
        top = int(np.argmax(pull))  # the class the nuisance pulls the most inputs to
        clean, nuis = self.predicted["clean"][top], self.predicted["nuisance"][top]
        lines.append(f"the nuisance changes the predicted class of {self.flipped['nuisance']:.1%} of the inputs; the "
                     f"largest pull: predicted {self.classes[top]!r} {clean:.1%} clean, {nuis:.1%} with the nuisance "
                     f"({nuis - clean:+.1%})")  # fmt: skip
        acc = "accuracy: " + ", ".join(f"{k} {v:.1%}" for k, v in self.accuracy.items()) + "; " if self.accuracy else ""
        lines.append(
            acc + (f"flagged units ablated: predicted {self.classes[top]!r} with the nuisance "
                   f"{self.predicted['nuisance, ablated'][top]:.1%}, predictions the nuisance changes "
                   f"{self.flipped['ablated']:.1%}" if self.flagged else "nothing flagged, nothing ablated")
        )  # fmt: skip
        return "\n".join(lines)


def audit(
    model: nn.Module,
    inputs,
    concepts: ConceptSet,
    nuisance: str,
    layers: Sequence[str],
    *,
    output: str,
    clean,
    with_nuisance,
    labels,
    classes: Sequence[str] | None = None,
    L: int = 3,
    B: int = 5,
    min_fraction: float = 0.02,
    permutations: int = 99,
    alpha: float = 0.05,
    min_effect: float = 0.3,
    batch_size: int = 256,
    seed: int = 0,
) -> Audit:
    """Audit a model for a nuisance concept (module docstring).

    Args:
        model: an nn.Module in eval mode.
        inputs: [N, ...] audit inputs; concepts: a ConceptSet over them holding the concept `nuisance`.
        layers: module names whose units are labelled and may be flagged (conv maps: spatial mean).
        output: the module whose [M, C] output is the logits.
        clean, with_nuisance: [M, ...] the same inputs without and with the nuisance; labels: [M] classes
            (None: no accuracies, only the logit shifts and the shares predicted as each class).
        classes: C class names (default "0", "1", ...).
        L, B, min_fraction: the search; permutations (>= 1), alpha, seed: the search-corrected p-values.
        min_effect: how far from 0.5 the nuisance alone's AUC must be for a flag (module docstring).

    Returns:
        Audit.

    Example:
        >>> print(audit(model, x, cs, "patch", ["classifier.1"], output="classifier.2", clean=xc,
        ...             with_nuisance=xp, labels=y).text())
    """
    if not isinstance(concepts, ConceptSet):
        raise TypeError(f"concepts: expected a ConceptSet over the audit inputs, got {type(concepts).__name__}")
    if nuisance not in concepts.names:
        raise ValueError(f"nuisance: expected one of the concepts' names, got {nuisance!r}")
    x, xc, xn = (torch.as_tensor(a) for a in (inputs, clean, with_nuisance))
    y = torch.as_tensor(labels).long() if labels is not None else None
    if len(x) != concepts.n_samples:
        raise ValueError(f"concepts: expected concepts over the {len(x)} audit inputs, got {concepts.n_samples}")
    if xc.shape != xn.shape or (y is not None and y.shape != (len(xc),)):
        raise ValueError(
            f"clean, with_nuisance, labels: expected [M, ...], the same [M, ...] and [M], got {tuple(xc.shape)}, "
            f"{tuple(xn.shape)} and {tuple(y.shape) if y is not None else None}"
        )
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise ValueError(
            f"permutations: expected an integer >= 1 (flags need search-corrected p-values), got {permutations!r}"
        )
    if not 0 < min_effect <= 0.5:
        raise ValueError(f"min_effect: expected a number in (0, 0.5], got {min_effect!r}")
    mods = resolve_layers(model, [*layers, output])
    split = lambda t: [t[i : i + batch_size] for i in range(0, len(t), batch_size)]  # noqa: E731
    acts = capture(model, split(x), list(layers))
    mask = concepts.mask(nuisance)
    res, flagged, sensitive = {}, [], []
    for layer in layers:
        res[layer] = explain(acts[layer], concepts, L=L, B=B, min_fraction=min_fraction, permutations=permutations,
                             seed=seed, layer=layer)  # fmt: skip
        alone = auroc(acts[layer], ConceptSet(mask.unsqueeze(1), [nuisance]))[:, 0]
        for d, labs in enumerate(res[layer]):
            e = labs[0] if len(labs) else None
            if e is not None and e.p_value_search <= alpha and nuisance in e.formula.concepts():
                unit = FlaggedUnit(layer, d, e, float(alone[d]))
                (flagged if abs(unit.auc_alone - 0.5) >= min_effect else sensitive).append(unit)
    # One pass over the clean inputs gives their logits and the flagged layers' means (the ablation's values).
    flagged_layers = {layer: mods[layer] for layer in sorted({f.layer for f in flagged})}
    logits, means = {}, {}
    logits["clean"], means = _logits(model, mods[output], split(xc), flagged_layers)
    logits["nuisance"], _ = _logits(model, mods[output], split(xn))
    if flagged:
        units = {layer: [f.unit for f in flagged if f.layer == layer] for layer in means}
        hooks = [mods[layer].register_forward_hook(_ablate(units[layer], means[layer])) for layer in means]
        try:
            for k, t in (("clean, ablated", xc), ("nuisance, ablated", xn)):
                logits[k], _ = _logits(model, mods[output], split(t))
        finally:
            for h in hooks:
                h.remove()
    c = logits["clean"].shape[1]
    names = list(classes) if classes is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"classes: expected {c} names (the output's width), got {len(names)}")
    shift = (logits["nuisance"] - logits["clean"]).double().mean(0).numpy()
    predicted = {k: np.bincount(v.argmax(1).numpy(), minlength=c) / len(v) for k, v in logits.items()}
    accuracy = {k: float((v.argmax(1) == y).double().mean()) for k, v in logits.items()} if y is not None else {}
    flipped = {"nuisance": float((logits["nuisance"].argmax(1) != logits["clean"].argmax(1)).double().mean())}
    if flagged:
        flipped["ablated"] = float(
            (logits["nuisance, ablated"].argmax(1) != logits["clean, ablated"].argmax(1)).double().mean()
        )
    return Audit(nuisance, flagged, sensitive, res, names, shift, predicted, accuracy, flipped, alpha, min_effect)


def _logits(model, out_module, batches, mean_of: dict | None = None) -> tuple[torch.Tensor, dict]:
    """([M, C] the output module's values, {name: the module's output averaged over the inputs, per
    position for conv maps: [C, ...]} for the modules in mean_of), from one pass over the batches."""
    parts, total = [], {}

    def mean_hook(name):
        def hook(_m, _i, o):
            s = o.detach().double().sum(0)
            total[name] = s if name not in total else total[name] + s

        return hook

    hooks = {m: mean_hook(name) for name, m in (mean_of or {}).items()}
    mean_out = hooks.get(out_module)  # an audited layer may be the output module itself

    def keep(m, i, o):
        if mean_out is not None:
            mean_out(m, i, o)
        parts.append(o.detach().float().cpu())

    hooks[out_module] = keep
    forward_with_hooks(model, hooks, batches)
    out = torch.cat(parts)
    return out, {name: (t / len(out)).float() for name, t in total.items()}


def _ablate(units: list[int], mean: torch.Tensor):
    def hook(_m, _i, o):
        o = o.clone()
        o[:, units] = mean[units].to(o.dtype)
        return o

    return hook
