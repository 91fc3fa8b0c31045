"""Circuits of labelled units: which units of earlier layers feed a unit, each with its INVERT label
(INVERT's "explaining circuits", Bykov et al. 2023, as a tool).

A unit is `"<module>:<index>"`: channel `index` of the module's output ([B, D], or [B, C, *spatial]
averaged over its positions, as `capture` reduces conv maps). Its value on an input is ū(x); the tree
reports means over the N inputs given.

Contribution of unit c of an earlier layer A to unit u of a later layer (or the output):

    contrib(u, c) = mean over inputs of  Σ_p  ∂ū/∂a_{c,p} · a_{c,p}        (p: the positions of channel c)

gradient × activation of A's output, summed over the channel's positions. Where the path from A to ū is
linear (affine: a linear layer or 1×1 convolution after pooling, a linear classifier), the gradient is
the weight, the same for every input, and contrib(u, c) = w_{u,c} · mean a_c exactly, so the
contributions of all of A's units sum to mean ū minus ū(0), the output with A's output set to zero
(the bias). Each edge is tested for that, not assumed: it is called **exact** when every input's
gradient equals the first input's (to float32 rounding), **gradient × activation** otherwise, and for
every unit the remainder mean ū − ū(0) − Σ_c contrib(u, c) is reported (0 on exact edges; what the
first-order attribution leaves unexplained elsewhere).

The tree: each root's `top` units of `through[0]` by |contribution| (signed in the output), each of those
units' `top` contributors in `through[1]`, and so on; every unit in the tree gets its best INVERT label
over the same inputs (`concepts`: a ConceptSet over the N inputs).

Example:
    >>> c = circuit(mnist_cnn, x, "classifier.2:3", ["classifier.1", "features.4"], concepts, top=3)
    >>> print(c.text())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..core.concepts import ConceptSet
from ..core.results import Explanation
from ..core.search import explain
from .capture import forward_with_hooks, model_device, resolve_layers
from .progress import ProgressLine

EXACT, GRADIENT = "exact", "gradient x activation"
# An edge is linear when every input's gradient equals the first one's within this many float32 ulps
# of the gradient's scale (a ReLU or ReLU6 on the path changes gradients by O(1) of their scale).
_GRAD_TOLERANCE = 64 * torch.finfo(torch.float32).eps


@dataclass
class CircuitNode:
    """One unit of a circuit tree.

    Attributes:
        layer, unit: the module name and channel.
        mean: its mean value over the inputs (spatial mean per input for conv channels).
        contribution: to its parent's mean (None for a root); method: EXACT or GRADIENT (None for a root).
        label: its best INVERT label over the inputs (None where it has none, e.g. a constant unit).
        baseline: mean value with the next layer's output set to zero (None for a leaf), and remainder:
            mean − baseline − Σ of every unit's contribution in that layer (0 on exact edges).
        children: its top contributors in the next layer of `through`.

    Example:
        >>> root = c.roots[0]; root.children[0].contribution, root.children[0].method
        (1.23, 'exact')
    """

    layer: str
    unit: int
    mean: float
    contribution: float | None = None
    method: str | None = None
    label: Explanation | None = None
    baseline: float | None = None
    remainder: float | None = None
    children: list[CircuitNode] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.layer}:{self.unit}"


@dataclass
class Circuit:
    """Circuit trees (one per output unit) and how each edge's contributions were computed.

    Attributes:
        roots: one CircuitNode per output unit.
        layers: the output's module, then the `through` modules.
        methods: {(later, earlier): EXACT or GRADIENT} per edge (exact only if every unit of the later
            layer in the tree had a constant gradient).
        n_inputs: N; n_used: per root, the inputs its means and contributions are over (`where`).

    Example:
        >>> print(c.text()); c.rows()[0]["unit"]
    """

    roots: list[CircuitNode]
    layers: list[str]
    methods: dict
    n_inputs: int
    n_used: list[int] = field(default_factory=list)

    def nodes(self):
        """Every node, depth first: (depth, node, parent)."""
        stack = [(0, r, None) for r in reversed(self.roots)]
        while stack:
            d, n, p = stack.pop()
            yield d, n, p
            stack.extend((d + 1, c, n) for c in reversed(n.children))

    def rows(self) -> list[dict]:
        """One dict per node (depth-first), for CSV or JSON: depth, parent, unit, mean, contribution,
        method, label, auc, p_value_search, concept_fraction, baseline, remainder."""
        out = []
        for d, n, p in self.nodes():
            e = n.label
            out.append(
                {
                    "depth": d,
                    "parent": p.name if p is not None else "",
                    "unit": n.name,
                    "mean": n.mean,
                    "contribution": n.contribution,
                    "method": n.method or "",
                    "label": str(e.formula) if e is not None else "",
                    "auc": e.auc if e is not None else None,
                    "p_value_search": e.p_value_search if e is not None else None,
                    "concept_fraction": e.concept_fraction if e is not None else None,
                    "baseline": n.baseline,
                    "remainder": n.remainder,
                }
            )
        return out

    def text(self) -> str:
        """The trees as indented text: unit, contribution and how it was computed, label, AUC."""
        lines = [
            "contributions: mean over the inputs of gradient x activation summed over a channel's positions; "
            "'exact' where the path is linear (the same gradient for every input: weight x mean activation, "
            "summing to mean - bias)"
        ]
        used = iter(self.n_used)
        for d, n, _p in self.nodes():
            if d == 0 and self.n_used:
                lines.append(f"[over {next(used):,} of the {self.n_inputs:,} inputs]")
            e = n.label
            lab = f"`{e.formula}` AUC {e.auc:.3f}" if e is not None else "(no label)"
            head = "  " * d + ("- " if d else "")
            contrib = f" {n.contribution:+.4g} ({n.method})" if n.contribution is not None else ""
            tail = ""
            if n.baseline is not None:
                tail = f"; with the next layer zeroed {n.baseline:.4g}, unexplained {n.remainder:+.3g}"
            lines.append(f"{head}{n.name}{contrib}: {lab}, mean {n.mean:.4g}{tail}")
        return "\n".join(lines)


def parse_unit(spec: str, name: str = "output") -> tuple[str, int]:
    """("module", index) of "module:index"."""
    module, sep, idx = str(spec).rpartition(":")
    if not sep or not module or not idx.isdigit():
        raise ValueError(f"{name}: expected '<module>:<unit index>' (e.g. 'classifier.2:3'), got {spec!r}")
    return module, int(idx)


def unit_values(out) -> torch.Tensor:
    """[B, D] of a module output: [B, D] as is, [B, C, *positions] averaged over the positions."""
    if isinstance(out, tuple | list):
        out = out[0]
    if not isinstance(out, torch.Tensor) or out.dim() < 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"layer output: expected [B, D] or [B, C, *positions], got {got}")
    return out if out.dim() == 2 else out.flatten(2).mean(2)


class _Stop(Exception):
    """Raised once the last module needed has run: the rest of the forward pass is not computed."""


def circuit(
    model: nn.Module,
    inputs,
    output,
    through: Sequence[str],
    concepts,
    *,
    where=None,
    top: int = 3,
    L: int = 3,
    B: int = 5,
    min_fraction: float = 0.02,
    permutations: int = 0,
    batch_size: int = 64,
    device=None,
    progress: bool = False,
) -> Circuit:
    """Which units of the `through` layers feed the output unit(s), by contribution, each with its label.

    Args:
        model: an nn.Module in eval mode that treats the inputs of a batch independently.
        inputs: [N, ...] tensor, or a list of such batches (the N inputs, in order).
        output: "<module>:<unit>" (e.g. "classifier.2:3", a class logit) or a list of them (one tree each).
        through: module names from the output backwards (e.g. ["classifier.1", "features.4"]).
        concepts: a ConceptSet (or [N, K] bool) over the N inputs, to label every unit of the tree.
        where: the inputs the means and contributions are taken over: None (all N), an [N] bool mask, or
            {output unit: [N] bool mask} (e.g. each class logit on its own class's inputs), inherited by
            the whole tree below that output. Labels are always searched over all N inputs.
        top: contributors kept per unit and layer (the largest absolute contributions).
        L, B, min_fraction, permutations: INVERT's search for the labels (explain).
        batch_size: inputs per forward pass (a tensor of inputs is split); device: where the model runs.

    Returns:
        Circuit (module docstring: what a contribution is and when it is exact).

    Example:
        >>> c = circuit(model, x, [f"classifier.2:{d}" for d in range(10)], ["classifier.1", "features.4"], cs,
        ...             where={f"classifier.2:{d}": labels == d for d in range(10)})
    """
    specs = [output] if isinstance(output, str) else list(output)
    roots = [parse_unit(o) for o in specs]
    if not roots:
        raise ValueError("output: expected at least one '<module>:<unit>', got none")
    if len({m for m, _ in roots}) != 1:
        raise ValueError(f"output: expected units of one module, got {sorted({m for m, _ in roots})}")
    if isinstance(through, str) or not isinstance(through, Sequence) or not through:
        raise ValueError(f"through: expected a list of at least one module name, got {through!r}")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top: expected an integer >= 1, got {top!r}")
    layers = [roots[0][0], *through]
    if len(set(layers)) != len(layers):
        raise ValueError(f"through: expected distinct modules, not the output's, got {layers}")
    mods = resolve_layers(model, layers)
    batches = _batches(inputs, batch_size)
    n = sum(len(b) for b in batches)
    n_concepts = concepts.n_samples if isinstance(concepts, ConceptSet) else len(concepts)
    if n_concepts != n:
        raise ValueError(f"concepts: expected concepts over the {n} inputs, got {n_concepts} samples")
    subsets = _subsets(where, specs, n)  # [S, N] bool; root r uses subsets[sub_of[r]]
    sub_of = [0 if not isinstance(where, dict) else specs.index(o) for o in specs]
    device = device if device is not None else model_device(model)
    line = ProgressLine(progress)
    try:
        acts = _capture_units(model, mods, batches, device)  # {layer: [N, D] float32}
        for m, u in roots:
            if u >= acts[m].shape[1]:
                raise ValueError(f"output: {m} has {acts[m].shape[1]} units, got unit {u}")
        methods, nodes_by_layer = {}, {}
        frontier = sorted({(u, sub_of[r]) for r, (_, u) in enumerate(roots)})  # (unit, subset)
        # (layer, unit, subset) -> (contributions [C], baseline, linear, the top contributors)
        contrib_of: dict[tuple[str, int, int], tuple[np.ndarray, float, bool, np.ndarray]] = {}
        for i in range(len(layers) - 1):
            later, earlier = layers[i], layers[i + 1]
            line.update(f"circuit: {later} <- {earlier}, {len(frontier)} unit(s)")
            c, base, linear = _contributions(model, mods[earlier], mods[later], frontier, subsets, batches, device,
                                             acts[later])  # fmt: skip
            methods[(later, earlier)] = EXACT if all(linear.values()) else GRADIENT
            nxt = set()
            for u, k in frontier:
                kids = _top(c[(u, k)], top)
                contrib_of[(later, u, k)] = (c[(u, k)], base[(u, k)], linear[u], kids)
                nxt.update((int(j), k) for j in kids)
            nodes_by_layer[later] = sorted({u for u, _ in frontier})
            frontier = sorted(nxt)
        nodes_by_layer[layers[-1]] = sorted({u for u, _ in frontier})
        line.update("circuit: labels")
        labels = {}
        for layer, units in nodes_by_layer.items():
            res = explain(acts[layer][:, units], concepts, L=L, B=B, min_fraction=min_fraction,
                          permutations=permutations, layer=layer)  # fmt: skip
            for j, u in enumerate(units):
                labels[(layer, u)] = res[j][0] if len(res[j]) else None
    finally:
        line.close()
    masks = torch.from_numpy(subsets)

    def build(depth: int, unit: int, k: int, parent_contrib=None, method=None) -> CircuitNode:
        layer = layers[depth]
        mean = float(acts[layer][masks[k], unit].double().mean())
        node = CircuitNode(layer, unit, mean, parent_contrib, method, labels.get((layer, unit)))
        if depth + 1 < len(layers):
            c, base, linear, kids = contrib_of[(layer, unit, k)]
            node.baseline = base
            node.remainder = float(node.mean - base - c.sum())
            node.children = [build(depth + 1, int(j), k, float(c[j]), EXACT if linear else GRADIENT) for j in kids]
        return node

    n_used = [int(subsets[k].sum()) for k in sub_of]
    return Circuit([build(0, u, sub_of[r]) for r, (_, u) in enumerate(roots)], layers, methods, n, n_used)


def _top(c: np.ndarray, k: int) -> np.ndarray:
    """The k largest |c| (ties: the smaller index first)."""
    return np.lexsort((np.arange(len(c)), -np.abs(c)))[:k]


def _subsets(where, specs: list[str], n: int) -> np.ndarray:
    """[S, N] bool of the `where` argument (circuit's docstring)."""

    def mask(m, name):
        a = np.asarray(m.cpu() if isinstance(m, torch.Tensor) else m)
        if a.dtype != bool or a.shape != (n,):
            raise ValueError(f"{name}: expected an [{n}] bool mask over the inputs, got {a.dtype} {a.shape}")
        if not a.any():
            raise ValueError(f"{name}: the mask selects no input")
        return a

    if where is None:
        return np.ones((1, n), dtype=bool)
    if isinstance(where, dict):
        missing = [o for o in specs if o not in where]
        extra = [o for o in where if o not in specs]
        if missing or extra:
            raise ValueError(f"where: expected one mask per output unit; missing {missing}, not an output {extra}")
        return np.stack([mask(where[o], f"where[{o!r}]") for o in specs])
    return mask(where, "where")[None]


def _batches(inputs, batch_size: int) -> list[torch.Tensor]:
    if isinstance(inputs, torch.Tensor | np.ndarray):
        x = torch.as_tensor(inputs)
        if x.dim() < 1 or len(x) == 0:
            raise ValueError(f"inputs: expected [N, ...] with N >= 1, got shape {tuple(x.shape)}")
        return [x[i : i + batch_size] for i in range(0, len(x), batch_size)]
    if isinstance(inputs, Sequence) and inputs and all(isinstance(b, torch.Tensor) for b in inputs):
        return list(inputs)
    raise TypeError(f"inputs: expected an [N, ...] tensor or a list of batch tensors, got {type(inputs).__name__}")


def _capture_units(model, mods: dict, batches, device) -> dict[str, torch.Tensor]:
    parts = {name: [] for name in mods}

    def hook(name):
        return lambda _m, _i, out: parts[name].append(unit_values(out).detach().float().cpu())

    forward_with_hooks(model, {m: hook(name) for name, m in mods.items()}, (b.to(device) for b in batches))
    for name, p in parts.items():
        if len(p) != len(batches):
            raise ValueError(
                f"through: module {name} ran {len(p)} times for {len(batches)} batches (once each expected)"
            )
    return {name: torch.cat(p) for name, p in parts.items()}


def _contributions(model, source: nn.Module, target: nn.Module, frontier, subsets, batches, device, target_acts):
    """({(u, k): [C] float64 mean contribution of source's channels over subset k},
    {(u, k): mean ū over subset k with source zeroed}, {u: whether every input's gradient equals the first's})."""
    state: dict = {}

    def src(_m, _i, out):
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"through: a module whose output is a tensor is needed, got {type(out).__name__}")
        if state["zero"]:
            return torch.zeros_like(out)
        leaf = out.detach().requires_grad_(True)
        state["leaf"] = leaf
        return leaf

    def tgt(_m, _i, out):
        state["out"] = unit_values(out)
        raise _Stop

    units = sorted({u for u, _ in frontier})
    subs = {u: [k for v, k in frontier if v == u] for u in units}
    total = {key: 0.0 for key in frontier}
    base = {key: 0.0 for key in frontier}
    first, linear = {}, dict.fromkeys(units, True)
    handles = [source.register_forward_hook(src), target.register_forward_hook(tgt)]
    row = 0
    try:
        for b in batches:
            b = b.to(device)
            sel = {k: torch.from_numpy(subsets[k, row : row + len(b)]) for k in range(len(subsets))}
            state["zero"], state["out"], state["leaf"] = False, None, None
            with torch.enable_grad():
                try:
                    model(b)
                except _Stop:
                    pass
                out, leaf = state["out"], state["leaf"]
                if out is None or leaf is None:
                    raise ValueError("through: the output does not run after the layer before it in the forward pass")
                if not out.requires_grad:
                    raise ValueError("through: the later layer does not depend on the earlier one")
                plain = target_acts[row : row + len(b)]
                if not torch.allclose(out.detach().float().cpu(), plain, rtol=1e-4, atol=1e-5):
                    raise ValueError(
                        "model: a unit's value changed when recomputed (dropout or other randomness in eval mode?)"
                    )
                a = leaf.detach().double()
                for j, u in enumerate(units):
                    (g,) = torch.autograd.grad(out[:, u].sum(), leaf, retain_graph=j + 1 < len(units))
                    c = g.double() * a
                    c = (c.flatten(2).sum(2) if c.dim() > 2 else c).cpu()  # [b, C] per input
                    for k in subs[u]:
                        total[(u, k)] = total[(u, k)] + c[sel[k]].sum(0)
                    ref = first.setdefault(u, g[0].detach().clone())
                    scale = float(ref.abs().max()) or 1.0
                    if linear[u] and float((g.detach() - ref).abs().max()) > _GRAD_TOLERANCE * scale:
                        linear[u] = False
            state["zero"] = True
            with torch.inference_mode():
                try:
                    model(b)
                except _Stop:
                    pass
            zeroed = state["out"].double().cpu()
            for u, k in frontier:
                base[(u, k)] += float(zeroed[sel[k], u].sum())
            row += len(b)
    finally:
        for h in handles:
            h.remove()
    count = subsets.sum(1)
    return (
        {(u, k): (total[(u, k)] / count[k]).numpy() for u, k in frontier},
        {(u, k): base[(u, k)] / count[k] for u, k in frontier},
        linear,
    )
