"""Labels out to where LLM-interpretability people look at neurons: Neuronpedia and delphi.

- Neuronpedia's explanation import: `<dir>/explanations/batch-<n>.jsonl.gz`, one JSON object per line
  with `modelId`, `layer` (Neuronpedia's source id, e.g. "6-res-jb"), `index` (the neuron or latent as a
  string), `description` (the formula), `explanationModelName` "invert_fast", `typeName` "invert_auroc",
  and INVERT's numbers in fields of their own: `auc` (the label's exact AUROC), `pValue`, `pValueSearch`
  (null where not computed), `conceptFraction`, `rank` (0 for the best label), `formula` (its text).
- delphi's explanations folder: `<dir>/<hook>_latent<i>.txt`, the explanation as delphi writes it
  (orjson.dumps of the text: a JSON string), so delphi's scorers can score INVERT's labels.

Both write the best label of every labeled neuron by default (`ranks` for more, Neuronpedia only:
delphi holds one explanation per latent). Files are written atomically.
"""

from __future__ import annotations

import gzip
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


def neuronpedia_rows(results: Explanations, model_id: str, source: str | None = None, ranks: int = 1):
    """The rows of Neuronpedia's explanation import for the first `ranks` labels of every neuron."""
    if not model_id or not isinstance(model_id, str):
        raise ValueError(f"model_id: expected Neuronpedia's model id (e.g. 'gpt2-small'), got {model_id!r}")
    layer = source if source is not None else results.layer
    if not layer:
        raise ValueError("source: expected Neuronpedia's source id (e.g. '6-res-jb'); the results name no layer")
    for labels in results:
        for e in labels[:ranks]:
            yield {
                "modelId": model_id,
                "layer": layer,
                "index": str(e.neuron),
                "description": str(e.formula),
                "explanationModelName": "invert_fast",
                "typeName": "invert_auroc",
                "auc": _finite(e.auc),
                "pValue": _finite(e.p_value),
                "pValueSearch": _finite(e.p_value_search),
                "conceptFraction": _finite(e.concept_fraction),
                "rank": e.rank,
                "formula": str(e.formula),
            }


def export_neuronpedia(
    results, folder, model_id: str, source: str | None = None, ranks: int = 1, batch: int = 10_000
) -> list[Path]:
    """Write Neuronpedia's explanation import: folder/explanations/batch-<n>.jsonl.gz.

    Args:
        results: the labels of one layer (explain's Explanations, or read_csv's), or a list of layers
            (each named by its own layer, or by source(layer name) when source is a callable).
        folder: the export folder (created); model_id: Neuronpedia's model id; source: its source id
            (default: the results' layer name); ranks: labels per neuron (default the best one);
            batch: rows per file (numbered on across layers).

    Returns:
        the files written, in order.

    Example:
        >>> export_neuronpedia(res, "np_export", model_id="smollm2-135m", source="6-mlp")
        [PosixPath('np_export/explanations/batch-0.jsonl.gz')]
    """
    ranks, batch = check_positive_int(ranks, "ranks"), check_positive_int(batch, "batch")
    layers = _layers(results)
    if not any(labels for res in layers for labels in res):
        raise ValueError(f"results: no neuron has a label in {len(layers)} layer(s); nothing to export")
    out = _folder(folder) / "explanations"
    out.mkdir(parents=True, exist_ok=True)
    files, buf = [], []
    rows = (
        row
        for res in layers
        for row in neuronpedia_rows(res, model_id, source(res.layer) if callable(source) else source, ranks)
    )

    def flush():
        path = out / f"batch-{len(files)}.jsonl.gz"
        data = io.BytesIO()
        with gzip.GzipFile(fileobj=data, mode="wb", mtime=0) as gz:  # mtime 0: the same bytes every run
            gz.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in buf).encode("utf-8"))
        with atomic_write(path, binary=True) as f:
            f.write(data.getvalue())
        files.append(path)

    for row in rows:
        buf.append(row)
        if len(buf) == batch:
            flush()
            buf = []
    if buf:
        flush()
    # Batch files of an earlier, longer export into the same folder would be imported with these: removed.
    for stale in out.glob("batch-*.jsonl.gz"):
        number = stale.name[len("batch-") : -len(".jsonl.gz")]
        if number.isdigit() and int(number) >= len(files):
            stale.unlink()
    return files


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
