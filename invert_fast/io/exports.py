"""Labels out to where LLM-interpretability people look at neurons: Neuronpedia and delphi.

Neuronpedia (hijohnnylin/neuronpedia) imports a source's explanations as rows of its `Explanation` table,
keeping only the keys that are columns of that table (apps/webapp/lib/db/import.ts: jsonb_to_recordset
over the first line's keys), so INVERT's numbers go into rows of its `ExplanationScore` table, which the
admin route `import-file` (tableName "ExplanationScore") reads. The export folder holds:

- `explanations/batch-<n>.jsonl.gz`: one `Explanation` row per label: `id` (deterministic, so a
  re-import adds nothing twice: the importer inserts ON CONFLICT DO NOTHING), `modelId`, `layer`
  (Neuronpedia's source id, e.g. "6-res-jb"), `index` (the neuron or latent, a string), `description`
  (the formula), `authorId` (the importing user's id: NOT NULL, a foreign key to User), `typeName`
  "invert_auroc", `explanationModelName` "invert_fast".
- `explanation_scores/batch-<n>.jsonl.gz`: per label, an `ExplanationScore` row of type `invert_auc`
  (the label's exact AUROC) and, where permutations ran, one of type `invert_p_value_search` (the
  p-value after the search: the chance that the best formula of a neuron with no relation to the
  concepts scores this well, the whole search repeated on permuted data); `jsonDetails` holds the
  per-mask Mann-Whitney p-value, the concept fraction, the rank and the formula's length.
- `config/explanation_type.jsonl`, `explanation_model_type.jsonl`, `explanation_score_type.jsonl`,
  `explanation_score_model.jsonl`: the rows those foreign keys need, in the files and layout of
  Neuronpedia's config import (importConfigFromS3 upserts each line by name).

delphi's explanations folder: `<dir>/<hook>_latent<i>.txt`, the explanation as delphi writes it
(orjson.dumps of the text: a JSON string), so delphi's scorers can score INVERT's labels.

Both write the best label of every labeled neuron by default (`ranks` for more, Neuronpedia only:
delphi holds one explanation per latent). Files are written atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
from pathlib import Path

from ..core.results import Explanations
from ..core.validate import check_positive_int
from ..files import atomic_write

FORMATS = ("neuronpedia", "delphi")


def check_hook(name) -> str:
    """delphi's hook point name of a layer, usable in a file name: non-empty, no '/', '\\' or control
    characters (a NUL byte would fail inside open()).

    Example:
        >>> check_hook("layers.6")
        'layers.6'
    """
    if not isinstance(name, str) or not name or any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(
            f"hook: expected delphi's hook point name of the layer (e.g. 'layers.6'; no '/', '\\' or control "
            f"characters), got {name!r}"
        )
    return name


def _folder(folder, name: str = "folder") -> Path:
    """The export folder, created; a path that is a file is an error naming it."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{name}: expected a folder to export into, got {out}, which is a file")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _layers(results) -> list:
    """One layer's Explanations, or a list / tuple of them, as a list."""
    layers = list(results) if isinstance(results, list | tuple) else [results]
    for i, res in enumerate(layers):
        if not isinstance(res, Explanations):
            raise TypeError(f"results[{i}]: expected Explanations (explain's or read_csv's), got {type(res).__name__}")
    return layers


def _finite(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


EXPLANATION_TYPE = "invert_auroc"
EXPLAINER = "invert_fast"
SCORE_TYPES = {"auc": "invert_auc", "p_value_search": "invert_p_value_search"}
PAPER = "https://arxiv.org/abs/2311.13594"


def _row_id(*parts) -> str:
    """A deterministic row id (Neuronpedia's ids are cuid strings; any unique text is a valid key)."""
    return "invf" + hashlib.sha256("\x00".join(map(str, parts)).encode("utf-8")).hexdigest()[:24]


def neuronpedia_rows(results: Explanations, model_id: str, author_id: str, source=None, ranks: int = 1):
    """(Explanation row, [ExplanationScore rows]) for the first `ranks` labels of every neuron.

    Example:
        >>> row, scores = next(neuronpedia_rows(res, "gpt2-small", "clx1user", source="6-res-jb"))
        >>> sorted(row), [s["explanationScoreTypeName"] for s in scores]
        (['authorId', 'description', 'explanationModelName', 'id', 'index', 'layer', 'modelId', 'typeName'], ['invert_auc'])
    """
    for value, name in ((model_id, "model_id"), (author_id, "author_id")):
        if not isinstance(value, str) or not value:
            what = "Neuronpedia's model id (e.g. 'gpt2-small')" if name == "model_id" else "the importing user's id"
            raise ValueError(f"{name}: expected {what}, got {value!r}")
    layer = source if source is not None else results.layer
    if not layer:
        raise ValueError("source: expected Neuronpedia's source id (e.g. '6-res-jb'); the results name no layer")
    for labels in results:
        for e in labels[:ranks]:
            description = str(e.formula)
            eid = _row_id(model_id, layer, e.neuron, e.rank, description)
            row = {
                "id": eid,
                "modelId": model_id,
                "layer": layer,
                "index": str(e.neuron),
                "description": description,
                "authorId": author_id,
                "typeName": EXPLANATION_TYPE,
                "explanationModelName": EXPLAINER,
            }
            details = json.dumps(
                {
                    "pValue": _finite(e.p_value),
                    "conceptFraction": _finite(e.concept_fraction),
                    "rank": e.rank,
                    "length": e.length,
                },  # fmt: skip
                ensure_ascii=False,
            )
            scores = []
            for field, kind in SCORE_TYPES.items():
                value = _finite(getattr(e, field))
                if value is not None:  # p_value_search: null where no permutations ran, so no row
                    scores.append(
                        {
                            "id": _row_id(eid, kind),
                            "initiatedByUserId": author_id,
                            "value": float(value),
                            "explanationId": eid,
                            "explanationScoreTypeName": kind,
                            "explanationScoreModelName": EXPLAINER,
                            "jsonDetails": details,
                        }
                    )
            yield row, scores


def neuronpedia_config(author_id: str) -> dict[str, list[dict]]:
    """The rows Neuronpedia needs before the explanations and scores import, by config file name.

    Example:
        >>> sorted(neuronpedia_config("clx1user"))
        ['explanation_model_type', 'explanation_score_model', 'explanation_score_type', 'explanation_type']
    """
    creator = {"creatorName": "invert_fast", "url": PAPER}
    return {
        "explanation_type": [
            {"name": EXPLANATION_TYPE, "displayName": "INVERT (AUROC)", "creatorId": author_id, **creator,
             "description": "The concept formula (AND, OR, NOT of dataset concepts) whose mask best separates the "
             "neuron's activations by AUROC, found by beam search (Bykov et al., NeurIPS 2023)."},
        ],
        "explanation_model_type": [
            {"name": EXPLAINER, "displayName": "invert_fast", **creator,
             "description": "Exact INVERT: integer rank sums, no language model."},
        ],
        "explanation_score_type": [
            {"name": SCORE_TYPES["auc"], "displayName": "AUROC", "creatorId": author_id, **creator,
             "description": "Exact AUROC of the formula's mask against the neuron's activations (ties as mid-ranks).",
             "scoreDescription": "0.5 is chance, 1 a perfect separation (higher inside the mask)."},
            {"name": SCORE_TYPES["p_value_search"], "displayName": "p after search", "creatorId": author_id,
             **creator,
             "description": "Permutation p-value of the best formula's AUROC with the whole search repeated on "
             "permuted data: it accounts for every formula the search tried.",
             "scoreDescription": "Small is significant; at least 1 / (permutations + 1)."},
        ],
        "explanation_score_model": [
            {"name": EXPLAINER, "displayName": "invert_fast", **creator,
             "description": "Scores computed exactly from the activations by invert_fast (no simulator)."},
        ],
    }  # fmt: skip


def export_neuronpedia(
    results, folder, model_id: str, author_id: str, source=None, ranks: int = 1, batch: int = 10_000
) -> list[Path]:
    """Write Neuronpedia's explanation import (module docstring): explanations, their scores, config rows.

    Args:
        results: the labels of one layer (explain's Explanations, or read_csv's), or a list of layers
            (each named by its own layer, or by source(layer name) when source is a callable).
        folder: the export folder (created); model_id: Neuronpedia's model id; author_id: the id of the
            Neuronpedia user the explanations and scores are imported as; source: its source id
            (default: the results' layer name); ranks: labels per neuron (default the best one);
            batch: rows per explanations file (numbered on across layers; the scores files follow them).

    Returns:
        the files written, in order: explanations, explanation_scores, config.

    Example:
        >>> export_neuronpedia(res, "np_export", model_id="smollm2-135m", author_id="clx1user", source="6-mlp")[0]
        PosixPath('np_export/explanations/batch-0.jsonl.gz')
    """
    ranks, batch = check_positive_int(ranks, "ranks"), check_positive_int(batch, "batch")
    layers = _layers(results)
    if not any(labels for res in layers for labels in res):
        raise ValueError(f"results: no neuron has a label in {len(layers)} layer(s); nothing to export")
    rows = (
        pair
        for res in layers
        for pair in neuronpedia_rows(res, model_id, author_id, source(res.layer) if callable(source) else source, ranks)
    )
    root = _folder(folder)
    out = {"explanations": root / "explanations", "explanation_scores": root / "explanation_scores"}
    for d in out.values():
        d.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {k: [] for k in out}
    buf: dict[str, list[dict]] = {k: [] for k in out}

    def flush(kind):
        path = out[kind] / f"batch-{len(files[kind])}.jsonl.gz"
        data = io.BytesIO()
        with gzip.GzipFile(fileobj=data, mode="wb", mtime=0) as gz:  # mtime 0: the same bytes every run
            gz.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in buf[kind]).encode("utf-8"))
        with atomic_write(path, binary=True) as f:
            f.write(data.getvalue())
        files[kind].append(path)
        buf[kind] = []

    for row, scores in rows:
        buf["explanations"].append(row)
        buf["explanation_scores"] += scores
        if len(buf["explanations"]) == batch:  # a scores file holds the scores of one explanations file
            flush("explanations")
            flush("explanation_scores")
    if buf["explanations"]:
        flush("explanations")
        flush("explanation_scores")
    # Batch files of an earlier, longer export into the same folder would be imported with these: removed.
    for kind, d in out.items():
        for stale in d.glob("batch-*.jsonl.gz"):
            number = stale.name[len("batch-") : -len(".jsonl.gz")]
            if number.isdigit() and int(number) >= len(files[kind]):
                stale.unlink()
    config = root / "config"
    config.mkdir(exist_ok=True)
    written = files["explanations"] + files["explanation_scores"]
    for name, lines in neuronpedia_config(author_id).items():
        with atomic_write(config / f"{name}.jsonl") as f:
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))
        written.append(config / f"{name}.jsonl")
    return written


def export_delphi(results, folder, hook=None) -> list[Path]:
    """Write delphi's explanations folder: folder/<hook>_latent<i>.txt with each neuron's best label.

    Args:
        results: the labels of one layer (explain's Explanations, or read_csv's), or a list of layers;
        folder: the explanations folder (created); hook: delphi's hook point name of the layer (default:
            the results' layer name; a callable maps each layer's name to its hook).

    Returns:
        the files written. Files of the same hooks that an earlier export wrote for other latents are
        removed (delphi would read them with these).

    Example:
        >>> export_delphi(res, "explanations", hook="layers.6")   # explanations/layers.6_latent0.txt, ...
    """
    layers = _layers(results)
    if len(layers) > 1 and isinstance(hook, str):
        raise ValueError(
            f"hook: {len(layers)} layers need a hook each (a callable, or None for their names), got {hook!r}"
        )
    names = [check_hook(hook(r.layer) if callable(hook) else hook if hook is not None else r.layer) for r in layers]
    if len(set(names)) < len(names):
        raise ValueError(f"hook: the layers' hook names must differ, got {names}")
    if not any(labels for res in layers for labels in res):
        raise ValueError(f"results: no neuron has a label in {len(layers)} layer(s); nothing to export")
    out = _folder(folder)
    files = []
    for res, name in zip(layers, names, strict=True):
        files += _write_delphi(res, out, name)
    return files


def _write_delphi(results: Explanations, out: Path, name: str) -> list[Path]:
    files = []
    # One small file per latent (tens of thousands in one folder): each is written under a temporary name
    # and renamed into place (a killed run leaves at most one .partial file, never a truncated .txt); not
    # through files.atomic_write, whose sweep of stale partials lists the folder on every write.
    for labels in results:
        if not labels:
            continue
        e = labels[0]
        path = out / f"{name}_latent{e.neuron}.txt"
        tmp = out / f".{path.name}.{os.getpid()}.partial"
        tmp.write_bytes(json.dumps(str(e.formula), ensure_ascii=False).encode("utf-8"))  # as orjson.dumps(text)
        os.replace(tmp, path)
        files.append(path)
    written = {p.name for p in files}
    prefix = f"{name}_latent"
    for stale in out.glob("*_latent*.txt"):
        number = stale.name[len(prefix) : -len(".txt")]
        if stale.name.startswith(prefix) and number.isdigit() and stale.name not in written:
            stale.unlink()
    return files
