"""INVERT's own API (lapalap/invert, `from invert.explainer import Invert`), backed by invert_fast.

Change one import and INVERT code runs on the exact, fast engine:

    from invert_fast.compat import Invert          # was: from invert.explainer import Invert
    explainer = Invert(device="cpu")
    explainer.load_concept_labels(labels_path="one_hot_labels.tnsr", description_path="classes.json")
    explanation = explainer.explain_representation(A=A[:, r], L=3, B=3, min_fraction=0.002)
    best = explanation[0]
    print(best["formula"], best["metric"])
    mask = best["formula"](explainer.memdict)      # [N] bool
    explainer.get_p_value(A[:, r], best["formula"])

INVERT 1.2's HDF5 path (its code is not public; this follows its README): stream activations into a
file with invertH5Dataset(path).update(batch), then Invert.explain_from_h5(path, L, B, ...), which
reads the file in feature batches within bounded memory.

What differs from the published code (README, "Coming from INVERT"): AUCs are exact (the published
code takes torchmetrics' binary AUROC of the activations after a sigmoid in float32, which rounds
close activations together); formulas with equal masks count once (distinct labels; the published
beam holds the same mask under several texts, even the same formula twice); `length` counts the
atoms of the formula (the published code records the step number, so `a & a` has length 2); every
tie is broken exactly (AUC, then length, then text) where the published sort keeps input order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .core.concepts import ConceptSet
from .core.formula import Formula
from .core.search import explain
from .core.sparse import as_sparse, is_sparse
from .core.validate import check_positive_int, to_tensor
from .io.store import NeuronStore, optional


class Concept:
    """A concept of a formula: its str is the name (INVERT's sympy.Symbol, as the notebook uses it)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:
        return isinstance(other, Concept) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class Phi:
    """A formula of concepts, used like INVERT's Phi: str() is its text in concept names, calling it on
    a memdict gives its [N] mask, and ~, &, | combine formulas.

    Args:
        formula: an invert_fast Formula (or its text); device: where masks are built.
    """

    def __init__(self, formula: Formula | str, device="cpu"):
        self.formula = formula if isinstance(formula, Formula) else Formula.parse(formula)
        self.device = device
        self._distinct_concepts = [Concept(c) for c in sorted(self.formula.concepts())]

    def __str__(self) -> str:
        return str(self.formula)

    def __repr__(self) -> str:
        return f"Phi({str(self.formula)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Phi) and other.formula == self.formula

    def __hash__(self) -> int:
        return hash(self.formula)

    def __call__(self, memdict: dict) -> torch.Tensor:
        """[N] bool mask of the formula over the samples of memdict (concept name -> [N] 0/1 column)."""

        def atom(name, negated):
            if name not in memdict:
                raise KeyError(f"memdict: no concept {name!r} (the formula uses {sorted(self.formula.concepts())})")
            col = to_tensor(memdict[name], f"memdict[{name!r}]").to(self.device) != 0
            return ~col if negated else col

        return self.formula.evaluate(atom)

    def __and__(self, other: Phi) -> Phi:
        return Phi(self.formula & other.formula, self.device)

    def __or__(self, other: Phi) -> Phi:
        return Phi(self.formula | other.formula, self.device)

    def __invert__(self) -> Phi:
        return Phi(~self.formula, self.device)


class Invert:
    """INVERT's explainer (lapalap/invert) on invert_fast's engine.

    Args:
        device: where the search runs ("cpu", "cuda", a torch.device); results are identical on all.

    Attributes (after load_concept_labels):
        labels: [N, K] bool tensor; num_samples, num_concepts; description: the JSON description;
        concepts: K Concepts (str is the name: the entry's "offset"); memdict: name -> [N] mask column.
    """

    def __init__(self, device="cpu"):
        self.device = torch.device(device)
        self.labels = None

    # --- concepts -----------------------------------------------------------------------------------
    def load_concept_labels(self, labels_path, description_path) -> None:
        """A torch.save'd [N, K] 0/1 tensor and INVERT's JSON description
        ({"0": {"name": ..., "definition": ..., "offset": "n01440764"}, ...}); concept k is named by the
        k-th entry's "offset", in the JSON's order."""
        labels = torch.load(labels_path, map_location="cpu", weights_only=True)
        if not isinstance(labels, torch.Tensor) or labels.dim() != 2:
            raise ValueError(f"labels_path: expected a saved [N, K] 0/1 tensor, got {getattr(labels, 'shape', labels)}")
        with open(description_path, encoding="utf-8") as f:
            description = json.load(f)
        if not isinstance(description, dict) or len(description) != labels.shape[1]:
            got = len(description) if isinstance(description, dict) else type(description).__name__
            raise ValueError(
                f"description_path: expected a JSON object with one entry per concept ({labels.shape[1]}), got {got}"
            )
        missing = [k for k, v in description.items() if not isinstance(v, dict) or "offset" not in v]
        if missing:
            raise ValueError(f'description_path: entries {missing[:5]} have no "offset" (the concept name)')
        names = [str(v["offset"]) for v in description.values()]
        definitions = [str(v.get("definition", "")) for v in description.values()]
        self.concept_set = ConceptSet(labels, names, definitions)
        self.labels = labels != 0
        self.num_samples, self.num_concepts = labels.shape
        self.description = description
        self.concepts = [Concept(s) for s in names]
        self.memdict = {s: self.labels[:, k] for k, s in enumerate(names)}

    def _concepts(self) -> ConceptSet:
        if self.labels is None:
            raise RuntimeError("Invert: call load_concept_labels(labels_path, description_path) first")
        return self.concept_set

    # --- explanations -------------------------------------------------------------------------------
    def explain_representation(
        self,
        A,
        L: int,
        B: int,
        limit_search=None,
        min_fraction=0.0,
        max_fraction=0.5,
        mode="positive",
        memorize_states=False,
    ):
        """The B best formulas of a unit's activations (A: [N]) or of every unit of A [N, D].

        Returns:
            for [N]: a list of B dicts {"formula": Phi, "length", "metric" (AUC), "differentiability",
            "concept_fraction"} best first; with memorize_states, {"1": [...], ..., str(L): [...]} (the beam
            after each length). For [N, D]: one such result per unit.
        """
        if is_sparse(A):  # [N, D] sparse: explain ranks only the stored entries
            x, single = as_sparse(A, "A"), False
        else:
            x = to_tensor(A, "A")
            single = x.dim() == 1
            if single:
                x = x[:, None]
        kw = dict(B=B, limit_search=limit_search, min_fraction=min_fraction, max_fraction=max_fraction, mode=mode)
        return self._results(lambda length: explain(x, self._concepts(), L=length, device=self.device, **kw),
                             L, memorize_states, single)  # fmt: skip

    def explain_from_h5(
        self,
        h5_path,
        L: int,
        B: int,
        limit_search=None,
        min_fraction=0.0,
        max_fraction=0.5,
        mode="positive",
        feature_batch_size: int = 1024,
        memorize_states=False,
    ):
        """explain_representation for every feature of an HDF5 file written by invertH5Dataset (dataset
        `Y` [N, D]), read feature_batch_size features at a time (bounded memory). One result per feature."""
        feature_batch_size = check_positive_int(feature_batch_size, "feature_batch_size")
        store = NeuronStore(h5_path, key="Y")
        if store.shape[0] != self._concepts().n_samples:
            raise ValueError(
                f"h5_path: {h5_path} holds {store.shape[0]} samples, the concept labels {self.num_samples}"
            )
        out = []
        for d0 in range(0, store.shape[1], feature_batch_size):
            x = store.read(d0, d0 + feature_batch_size)
            kw = dict(B=B, limit_search=limit_search, min_fraction=min_fraction, max_fraction=max_fraction, mode=mode)
            out += self._results(
                lambda length, x=x, kw=kw: explain(x, self._concepts(), L=length, device=self.device, **kw),
                L, memorize_states, False,
            )  # fmt: skip
        return out

    def _results(self, run, L, memorize_states, single):
        if memorize_states:
            # The beam after length l of a search to L is the final beam of the same search to l.
            states = {str(length): self._rows(run(length)) for length in range(1, L + 1)}
            per_unit = [{key: rows[d] for key, rows in states.items()} for d in range(len(states["1"]))]
        else:
            per_unit = self._rows(run(L))
        return per_unit[0] if single else per_unit

    def _rows(self, res):
        return [
            [
                {
                    "formula": Phi(e.formula, self.device),
                    "length": e.length,
                    "metric": e.auc,
                    "differentiability": e.differentiability,
                    "concept_fraction": e.concept_fraction,
                }
                for e in labels
            ]
            for labels in res
        ]

    # --- statistics and text ------------------------------------------------------------------------
    def get_p_value(self, A, explanation: Phi, alternative="two-sided") -> float:
        """The Mann-Whitney p-value as INVERT computes it: scipy.stats.mannwhitneyu(outside, inside,
        alternative=alternative) with scipy's default method (so "greater" means outside > inside)."""
        try:
            from scipy import stats
        except ImportError:
            raise ImportError("get_p_value: INVERT's p-value is scipy's mannwhitneyu; pip install scipy") from None
        a = (as_sparse(A, "A").dense() if is_sparse(A) else to_tensor(A, "A")).double().cpu().numpy().reshape(-1)
        mask = explanation(self.memdict).cpu().numpy()
        if a.shape[0] != mask.shape[0]:
            raise ValueError(f"A: expected {mask.shape[0]} activations (one per sample), got {a.shape[0]}")
        return float(stats.mannwhitneyu(a[~mask], a[mask], alternative=alternative).pvalue)

    def explain_formula(self, explanation: Phi) -> dict:
        """{"label": the formula text with concept names, "details": [{"wordnet", "description",
        "full_description"}, ...]} as INVERT's explain_formula."""
        by_offset = {str(v["offset"]): v for v in self.description.values()}
        details = []
        for c in explanation._distinct_concepts:
            entry = by_offset.get(str(c))
            if entry is None:
                raise KeyError(f"explanation: concept {str(c)!r} is not in the description")
            details.append(
                {"wordnet": c, "description": entry.get("name"), "full_description": entry.get("definition")}
            )
        # Whole atoms are renamed (INVERT replaces substrings: with concepts cat and cat2, "cat2 | cat"
        # would come back with cat's name inside cat2's).
        text = explanation.formula.render(lambda name: by_offset[name].get("name"))
        return {"label": text, "details": details}


class invertH5Dataset:  # noqa: N801  (INVERT 1.2's name)
    """Activations streamed into an HDF5 file, batch by batch (INVERT 1.2's path; needs invert_fast[hdf5]).

    The dataset `Y` [N, D] float32 is chunked (rows_per_chunk x D) and resizable along N; update(batch)
    appends a batch ([b, ...] torch or numpy; each row flattened to D values). The file is opened in
    append mode: a second invertH5Dataset on the same path continues it.

    Example:
        >>> with invertH5Dataset("acts.h5") as ds:
        ...     for images in loader:
        ...         ds.update(model(images))
        >>> Invert().explain_from_h5("acts.h5", L=3, B=5)
    """

    def __init__(self, path, rows_per_chunk: int = 1024):
        h5py = optional("h5py", "hdf5", ".h5")
        self.path = Path(path)
        self.rows_per_chunk = int(rows_per_chunk)
        self.file = h5py.File(self.path, "a")

    def update(self, batch) -> None:
        x = batch.detach().float().cpu().numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch, np.float32)
        if x.ndim == 0:
            raise ValueError(f"batch: expected [b, ...] activations, got a scalar of shape {x.shape}")
        d = int(np.prod(x.shape[1:]))  # not reshape(b, -1): it cannot infer -1 for an empty batch
        if d == 0:
            raise ValueError(f"batch: expected at least one value per sample, got shape {x.shape}")
        x = x.reshape(x.shape[0], d).astype(np.float32, copy=False)
        if "Y" not in self.file:
            d = x.shape[1]
            self.file.create_dataset(
                "Y",
                shape=(0, d),
                maxshape=(None, d),
                dtype="float32",
                chunks=(max(1, min(self.rows_per_chunk, 4096)), d),
            )
        ds = self.file["Y"]
        if ds.shape[1] != x.shape[1]:
            raise ValueError(f"batch: expected rows of {ds.shape[1]} values (as before), got {x.shape[1]}")
        n = ds.shape[0]
        ds.resize(n + x.shape[0], axis=0)
        ds[n:] = x
        self.file.flush()

    def __len__(self) -> int:
        return int(self.file["Y"].shape[0]) if "Y" in self.file else 0

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


__all__ = ["Concept", "Invert", "Phi", "invertH5Dataset"]
