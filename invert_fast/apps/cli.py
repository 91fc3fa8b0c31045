"""Command line: `invert-fast explain ...` (also `python -m invert_fast explain ...`).

    invert-fast explain --activations A.npy --labels Y.npy --names names.txt -L 3 -B 10 --out labels.csv
    invert-fast explain ... --checkpoint ckpt/ --out labels.csv          (resumable)
    torchrun --nproc_per_node=G -m invert_fast explain ... --out labels.csv   (neurons sharded over ranks)
    invert-fast transpose layer.npy                         (-> layer.neurons.npy: contiguous neuron chunks)
    invert-fast report labels.csv --out report.html [--activations A.npy --concepts Y.npy --names names.txt]
    invert-fast compare --case mnist|fashion [--length L] [--out DIR]    (INVERT vs Network Dissection)
    invert-fast compare --maps maps.npy --masks masks.npz [--out DIR]
    invert-fast compare --broden DIR [--model module:fn --layer NAME] [--netdissect netdissect-lite]
    invert-fast demo [--case fashion|mnist] [--out DIR]

Inputs: .npy, .pt (a tensor, or a dict with --*-key) and .h5/.hdf5 (a dataset, named by --*-key when
the file holds several). A .npy of activations is read in neuron chunks as needed ([N, D], or [D, N]
when named *.neurons.npy), so its size is not limited by memory. Labels are an [N, K] 0/1 matrix or [N] class indices. Output: .csv or .json.
Errors are one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..core.params import SearchParams
from ..core.validate import to_tensor
from ..files import drop_resident_pages
from ..io.progress import ProgressLine
from ..io.store import NeuronStore
from .argtypes import add_search_arguments, fraction, int_at_least


class CliError(Exception):
    """A user error, reported as one line."""


def input_file(path: str, what: str) -> Path:
    """An existing regular file, or a one-line error naming the option."""
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{what}: expected a file, got the directory {path}")
    if not p.is_file():
        raise CliError(f"{what}: no such file: {path}")
    return p


def output_path(path: str, what: str, inputs: dict[str, str | None], folder: bool = False) -> Path:
    """Check an output before any computation: not one of the inputs (same file, however spelled), not a
    directory (or, for a folder output, not a file), and its parent folder not a file.

    Args:
        inputs: option name -> path of each input of the command (None where not given).
    """
    p = Path(path)
    for opt, src in inputs.items():
        if src is not None and (
            Path(src).resolve() == p.resolve() or (p.exists() and Path(src).exists() and p.samefile(src))
        ):
            raise CliError(f"{what}: {path} is also the input {opt}; write the output elsewhere")
    if folder:
        if p.exists() and not p.is_dir():
            raise CliError(f"{what}: expected a folder, got the file {path}")
    elif p.is_dir():
        raise CliError(f"{what}: expected a file path, got the directory {path}")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise CliError(f"{what}: cannot write {path}: {parent} is a file, not a folder")
    return p


def load_array(path: str, key: str | None, what: str):
    """A numpy array or torch tensor from .npy, .pt or .h5."""
    p = input_file(path, what)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":  # memory-mapped: each chunk (or rank) pages in only what it reads
            return np.load(p, mmap_mode="r", allow_pickle=False)
        if suffix in (".pt", ".pth"):
            obj = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                if key is None:
                    if len(obj) != 1:
                        raise CliError(f"{what}: {path} holds {sorted(obj)}; pick one with the --*-key option")
                    key = next(iter(obj))
                if key not in obj:
                    raise CliError(f"{what}: {path} has no entry {key!r} (has {sorted(obj)})")
                obj = obj[key]
            if not isinstance(obj, torch.Tensor):
                raise CliError(f"{what}: expected a tensor in {path}, got {type(obj).__name__}")
            return obj
        if suffix == ".safetensors":
            from ..io.store import optional

            safetensors = optional("safetensors", "safetensors", ".safetensors")
            with safetensors.safe_open(str(p), framework="pt") as f:
                key = key if key is not None else (next(iter(f.keys())) if len(f.keys()) == 1 else None)
                if key is None or key not in f.keys():
                    raise CliError(f"{what}: {path} holds {sorted(f.keys())}; pick one with the --*-key option")
                return f.get_tensor(key)
        if suffix in (".h5", ".hdf5"):
            try:
                import h5py
            except ImportError:
                raise CliError(f"{what}: reading {suffix} files needs h5py: pip install 'invert_fast[hdf5]'") from None
            with h5py.File(p, "r") as f:
                names = [k for k in f if isinstance(f[k], h5py.Dataset)]
                if key is None:
                    if len(names) != 1:
                        raise CliError(f"{what}: {path} holds datasets {names}; pick one with the --*-key option")
                    key = names[0]
                if key not in f:
                    raise CliError(f"{what}: {path} has no dataset {key!r} (has {names})")
                if not isinstance(f[key], h5py.Dataset):
                    raise CliError(f"{what}: {key!r} in {path} is an HDF5 group, not a dataset (datasets: {names})")
                return f[key][()]
    except CliError:
        raise
    except Exception as e:  # unreadable file: say which and why, in one line
        raise CliError(f"{what}: cannot read {path}: {e}") from None
    raise CliError(f"{what}: unsupported file type {suffix!r} (use .npy, .pt, .h5 or .safetensors)")


def open_store(path: str, key: str | None) -> NeuronStore:
    """The activations file (or a delphi cache folder) as a NeuronStore, or a one-line error."""
    from ..io.delphi import is_delphi_cache

    if Path(path).is_dir() and not is_delphi_cache(path):
        raise CliError(
            f"activations: expected a file, got the directory {path} (not a delphi cache: no <start>_<end>.safetensors shards)"
        )
    if not Path(path).is_dir():
        input_file(path, "activations")
    try:
        return NeuronStore(path, key=key)
    except (ValueError, TypeError, KeyError, ImportError, OSError, EOFError) as e:
        msg = str(e).strip('"').splitlines()[0] if str(e) else type(e).__name__
        raise CliError(msg if path in msg else f"activations: cannot read {path}: {msg}") from None


def read_names(path: str | None) -> list[str] | None:
    """Concept names, one per line: split on line feeds only (str.splitlines() also splits on U+2028,
    U+0085 and form feeds, shifting every later name), "\r" of CRLF files and a UTF-8 BOM removed,
    trailing empty lines ignored. Names are validated later (no control characters)."""
    if path is None:
        return None
    p = input_file(path, "names")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise CliError(f"names: {path} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    lines = [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def build_concepts(labels, names, num_classes: int | None = None):
    """A ConceptSet from [N, K] 0/1 labels (exactly K names) or [N] class indices (exactly max(y) + 1
    names, or num_classes when given: for data that lacks the top classes)."""
    import invert_fast as inv

    y = to_tensor(labels, "labels")
    if y.dim() == 1:
        if y.is_floating_point() or y.dtype == torch.bool:
            raise CliError(f"labels: 1-D labels must be integer class indices, got dtype {y.dtype}")
        if y.numel() == 0:
            raise CliError("labels: there are no samples (N = 0)")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0:
            raise CliError(f"labels: class indices must be >= 0, got {lo}")
        # Without names, one is made per class: bound the classes by the data before making any (class
        # indices far beyond the sample count are a mistake, not a data set).
        limit = max(2 * y.numel(), 65_536)
        if names is None and num_classes is None and hi >= limit:
            raise CliError(
                f"labels: class index {hi:,} with {y.numel():,} samples would make {hi + 1:,} classes, most of them "
                f"empty; at most {limit:,} without --names or --num-classes (remap the indices to 0..C-1)"
            )
        if num_classes is None:
            classes, why = hi + 1, f"labels hold class indices 0..{hi}"
        elif hi >= num_classes:
            raise CliError(f"labels: class index {hi} is not below --num-classes {num_classes}")
        else:
            classes, why = num_classes, f"--num-classes {num_classes}"
        if names is not None and len(names) != classes:
            raise CliError(
                f"names: expected {classes} names ({why}), got {len(names)}"
                + ("" if num_classes is not None else "; use --num-classes when the data lacks the top classes")
            )
        names = names if names is not None else [f"class{i}" for i in range(classes)]
        return inv.ConceptSet.from_classes(y, names)
    if num_classes is not None:
        raise CliError(f"num_classes: only for [N] class-index labels, got labels of shape {tuple(y.shape)}")
    if y.dim() == 2 and names is not None and len(names) != y.shape[1]:
        raise CliError(f"names: expected {y.shape[1]} names (labels are [N, K = {y.shape[1]}]), got {len(names)}")
    return inv.ConceptSet(y, names)


def concepts_from_ids(ids_arg: str, acts, table, names):
    """ConceptSet.from_ids for --ids: the [V, K] table given as --labels, the ids from a file ([N] or
    [N, C] integers; C > 1 needs one table per column, so only C = 1 here) or the cache's tokens."""
    import invert_fast as inv

    if ids_arg == "tokens":
        if not hasattr(acts, "tokens"):
            raise CliError(f"ids: 'tokens' needs a delphi cache folder as --activations, got {acts!r}")
        ids = acts.tokens()
    else:
        ids = load_array(ids_arg, None, "ids")
    t = to_tensor(table, "labels")
    if t.dim() != 2:
        raise CliError(f"labels: with --ids, expected the [V, K] 0/1 table of each id, got shape {tuple(t.shape)}")
    if names is not None and len(names) != t.shape[1]:
        raise CliError(
            f"names: expected {t.shape[1]} names (the --ids table is [V, K = {t.shape[1]}]), got {len(names)}"
        )
    try:
        return inv.ConceptSet.from_ids(ids, t, names)
    except (ValueError, TypeError) as e:
        raise CliError(str(e)) from None


class Progress:
    """explain's progress(done, total) callback as one line on stderr (see io/progress.py)."""

    def __init__(self, enabled: bool):
        self.line = ProgressLine(enabled)

    def __call__(self, done: int, total: int) -> None:
        width = 30
        fill = int(width * done / max(total, 1))
        rate = done / max(self.line.elapsed(), 1e-9)
        self.line.update(
            f"explain [{'#' * fill}{'.' * (width - fill)}] {done}/{total} neurons, {rate:,.0f}/s", final=done >= total
        )


def cmd_explain(args) -> int:
    import invert_fast as inv

    from ..io.distributed import distributed_context
    from ..io.runner import explain_to_file

    inputs = {
        "--activations": args.activations,
        "--labels": args.labels,
        "--names": args.names,
        "--groups": args.groups,
        "--ids": None if args.ids == "tokens" else args.ids,
    }
    out = output_path(args.out, "out", inputs)
    if out.suffix.lower() not in (".csv", ".json"):
        raise CliError(f"out: expected a .csv or .json path, got {args.out!r}")
    if args.checkpoint is not None:
        output_path(args.checkpoint, "checkpoint", {**inputs, "--out": args.out}, folder=True)
    # An on-disk store (.npy, .h5, .safetensors, .pt): neuron chunks are read as needed, memory holds one
    # chunk (see io/store.py).
    acts = open_store(args.activations, args.activations_key)
    labels = load_array(args.labels, args.labels_key, "labels")
    if args.ids is not None:
        concepts = concepts_from_ids(args.ids, acts, labels, read_names(args.names))
    else:
        concepts = build_concepts(labels, read_names(args.names), args.num_classes)
    drop_resident_pages(labels)  # packed into the concept set: the mapped file need not stay resident
    del labels
    if args.layer == "" and getattr(acts, "hookpoint", None):
        args.layer = acts.hookpoint
    check_exports(args, acts)
    if args.export and not (args.source or args.layer):
        raise CliError("source: --export needs the layer's name (--layer, or --source for Neuronpedia's source id)")
    t0 = time.perf_counter()
    kwargs = dict(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(SearchParams)},  # every search parameter
        device=args.device,
        max_memory=args.max_memory,
        groups=load_array(args.groups, args.groups_key, "groups") if args.groups is not None else None,
        max_work=args.max_work,
        metrics=args.metrics,
    )
    rank, world, gather, device = distributed_context()
    if world > 1 or args.checkpoint is not None or isinstance(acts, NeuronStore):
        if device is not None:
            kwargs["device"] = device
        # One process writing CSV without adjustment streams rows: memory holds one chunk of results.
        stream = world == 1 and args.adjust is None and out.suffix.lower() == ".csv"
        res = explain_to_file(
            acts, concepts, out, checkpoint=args.checkpoint, chunk=args.chunk, rank=rank, world=world, gather=gather,
            adjust=args.adjust, layer=args.layer, progress=Progress(not args.quiet and rank == 0),
            keep_results=not stream, **kwargs,
        )  # fmt: skip
        if res is None:  # not rank 0: rank 0 reports and writes
            return 0
    else:
        res = inv.explain(
            acts, concepts, adjust=args.adjust, layer=args.layer, progress=Progress(not args.quiet), **kwargs
        )
        (res.to_json if out.suffix.lower() == ".json" else res.to_csv)(out)
    seconds = time.perf_counter() - t0
    written = export_labels(args, res, out, acts)
    if isinstance(res, np.ndarray):  # streamed: each neuron's best AUC
        best = [float(a) for a in res if a == a]
    else:
        best = [e.auc for e in res.best() if e is not None]
    med = f"{float(np.median(best)):.4f}" if best else "n/a"
    print(
        f"labeled {len(res)} neurons ({concepts.n_samples} samples, {len(concepts)} concepts, L={args.L}, B={args.B}) "
        f"in {seconds:.2f} s; median best AUC {med}; wrote {out}"
    )
    for line in written:
        print(line)
    return 0


def check_exports(args, acts) -> None:
    """--export FORMAT DIR: known formats, a Neuronpedia model id, folders that are not files; before computing."""
    from ..io.exports import FORMATS, check_hook

    for fmt, folder in args.export or []:
        if fmt not in FORMATS:
            raise CliError(f"export: expected a format of {FORMATS}, got {fmt!r}")
        output_path(folder, "export", {"--activations": args.activations, "--labels": args.labels}, folder=True)
        if fmt == "neuronpedia" and not (args.model_id or getattr(acts, "model", None)):
            raise CliError("model-id: --export neuronpedia needs Neuronpedia's model id (--model-id, e.g. gpt2-small)")
        if fmt == "neuronpedia" and not args.author_id:
            raise CliError(
                "author-id: --export neuronpedia needs the id of the Neuronpedia user to import as (--author-id)"
            )
        if fmt == "delphi" and (args.source or args.layer):
            try:
                check_hook(args.source or args.layer)
            except ValueError as e:
                raise CliError(f"source: --export delphi {e}") from None


def export_labels(args, res, out: Path, acts) -> list[str]:
    """Write the --export folders from the results (read back from the labels CSV when they were streamed)."""
    from ..core.results import read_csv
    from ..io.exports import export_delphi, export_neuronpedia

    if not args.export:
        return []
    if isinstance(res, np.ndarray):
        (res,) = read_csv(out)
    lines = []
    for fmt, folder in args.export:
        if fmt == "neuronpedia":
            files = export_neuronpedia(
                res, folder, args.model_id or acts.model, args.author_id, source=args.source or None
            )
        else:
            files = export_delphi(res, folder, hook=args.source or None)
        lines.append(f"exported {len(files)} {fmt} file(s) to {folder}")
    return lines


def cmd_transpose(args) -> int:
    from ..io.store import to_neuron_major

    t0 = time.perf_counter()
    input_file(args.store, "store")
    if args.out is not None:
        output_path(args.out, "out", {"store": args.store})
    out = to_neuron_major(args.store, args.out, max_memory=args.max_memory)
    store = NeuronStore(out)
    print(
        f"wrote {out}: {store.shape[0]} samples x {store.shape[1]} neurons, neuron-major, in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_report(args) -> int:
    from ..core.results import read_csv
    from .report import LayerReport, write_report

    inputs = {"labels_file": args.labels_file, "--activations": args.activations, "--concepts": args.concepts}
    output_path(args.out, "out", {**inputs, "--names": args.names})
    input_file(args.labels_file, "labels_file")
    if Path(args.labels_file).suffix.lower() == ".json":
        raise CliError(
            f"labels_file: {args.labels_file} is a JSON labels file; report reads the labels CSV (explain --out labels.csv)"
        )
    try:
        results = read_csv(args.labels_file)
    except UnicodeDecodeError as e:
        raise CliError(
            f"labels_file: {args.labels_file} is not a UTF-8 labels CSV (byte {e.start}: {e.reason})"
        ) from None
    if args.layer is not None:
        results = [r for r in results if r.layer == args.layer]
        if not results:
            raise CliError(f"layer: no rows of layer {args.layer!r} in {args.labels_file}")
    acts = concepts = None
    if args.tokens is not None:
        pass  # token_layer_report reads the store and builds the concepts
    elif args.activations is not None or args.concepts is not None:
        if args.activations is None or args.concepts is None or len(results) != 1:
            raise CliError(
                "activations/concepts: give both, for a labels file with one layer (or pick one with --layer)"
            )
        acts = to_tensor(load_array(args.activations, args.activations_key, "activations"), "activations")
        concepts = build_concepts(
            load_array(args.concepts, args.concepts_key, "concepts"), read_names(args.names), args.num_classes
        )
        if acts.dim() != 2 or acts.shape[1] < len(results[0]):
            raise CliError(
                f"activations: expected [N, D >= {len(results[0])}] (the file labels neurons up to "
                f"{len(results[0]) - 1}), got shape {tuple(acts.shape)}"
            )
        if acts.shape[0] != concepts.n_samples:
            raise CliError(
                f"concepts: expected {acts.shape[0]} samples (the rows of --activations), got {concepts.n_samples}"
            )
        missing = missing_concepts(results[0], concepts)
        if missing:
            raise CliError(
                f"names: the labels use concepts {missing[:5]} that are not among the {len(concepts)} concept names"
            )
    if args.tokens is not None:
        layers = [token_layer_report(args, results)]
    else:
        if args.tokenizer is not None or args.token_concepts is not None:
            raise CliError(
                "tokens: --tokenizer and --token-concepts go with --tokens (a token index or a delphi cache)"
            )
        layers = [LayerReport(r, acts, concepts) for r in results]
    path = write_report(args.out, layers, title=f"invert_fast report: {Path(args.labels_file).name}")
    print(f"wrote {path} ({sum(len(r) for r in results)} neurons in {len(results)} layer(s))")
    return 0


def missing_concepts(labels, concepts) -> list[str]:
    """The concepts a labels file's formulas use that a concept set lacks (sorted)."""
    used = set().union(*(e.formula.concepts() for r in labels for e in r))
    return sorted(used - set(concepts.names))


def token_layer_report(args, results):
    """The report of one token layer: its labels, the store's columns of the neurons shown, the token index's
    texts (top contexts, quantiles, error examples) and, with --token-concepts, the labels' masks."""
    from ..core.token_index import TokenIndex
    from ..io.delphi import is_delphi_cache
    from .report import LayerReport, best_labelled, token_contexts

    if len(results) != 1:
        raise CliError(f"layer: --tokens reports one layer, the file has {len(results)}; pick one with --layer")
    if args.activations is None:
        raise CliError("activations: --tokens needs --activations, the layer's store (.npy, delphi folder, ...)")
    if args.concepts is not None:
        raise CliError("concepts: with --tokens the concepts come from --token-concepts, not --concepts")
    tok = None
    if args.tokenizer is not None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.tokenizer)
    folder = Path(args.tokens)
    if (folder / "tokens.npy").is_file():
        index = TokenIndex.load(folder)
    elif is_delphi_cache(folder):
        index = NeuronStore(folder).token_index()
    else:
        raise CliError(f"tokens: {folder} holds neither a token index (tokens.npy, ...) nor a delphi cache")
    if index.texts is None:
        if tok is None:
            raise CliError(f"tokenizer: {folder} has token ids but no text; give --tokenizer to decode them")
        index = index.with_text(tok)
    store = NeuronStore(args.activations, key=args.activations_key)
    n, d = store.shape
    res = results[0]
    if n != len(index):
        raise CliError(f"tokens: {folder} indexes {len(index)} tokens, the store {args.activations} has {n} samples")
    if d < len(res):
        raise CliError(f"activations: expected D >= {len(res)} neurons (the labels'), got {d}")
    concepts = None
    if args.token_concepts is not None:
        if tok is None:
            raise CliError("tokenizer: --token-concepts builds concepts with the tokenizer; give --tokenizer")
        from ..concepts.tokens import token_concepts

        words = None
        if args.token_concepts == "all":
            from ..concepts.linguistic import load_english, word_annotations

            words = word_annotations(load_english(), index)
        concepts = token_concepts(tok, index, top=args.top_tokens, words=words)
        missing = missing_concepts(res, concepts)
        if missing:
            raise CliError(
                f"token-concepts: the labels use concepts {missing[:5]} these concepts lack; build them as explain did "
                "(--token-concepts all for spaCy's families, --top-tokens as given)"
            )
    shown = best_labelled(res, args.show)
    cols = {}
    for k in shown:
        block = store.read(k, k + 1)
        cols[k] = (
            (block.dense() if hasattr(block, "dense") else torch.as_tensor(np.asarray(block)))[:, 0].double().numpy()
        )
    seq = index.sequence.numpy()
    return LayerReport(
        res,
        cols,
        concepts,
        neurons=shown,
        token_texts=index.token_texts(),
        sequence=seq,
        contexts=token_contexts(store, seq),
    )  # fmt: skip  (every neuron's, for the picker)


def cmd_compare(args) -> int:
    from ..cases import zoo
    from ..dissection.compare import compare
    from ..dissection.pixel_masks import PixelMasks
    from .report import LayerReport, comparison_html, write_report

    try:  # the comparison table is written with pandas: say so before any computing
        import pandas  # noqa: F401
    except ImportError:
        raise CliError("compare: writing the comparison table needs pandas: pip install pandas") from None
    if sum(v is not None for v in (args.case, args.maps, args.broden)) != 1:
        raise CliError("compare: give one of --case (mnist or fashion), --maps with --masks, or --broden")
    if args.broden is None and (args.model is not None or args.categories is not None or args.max_images is not None):
        raise CliError("compare: --model, --categories and --max-images go with --broden")
    t0 = time.perf_counter()
    images = None
    output_path(args.out, "out", {"--maps": args.maps, "--masks": args.masks}, folder=True)
    if args.broden is not None:
        maps, masks, layer, what = broden_maps(args)
    elif args.case is not None:
        maps, masks, images, what = zoo.conv_case(
            args.case, args.layer, args.samples, args.size, progress=not args.quiet
        )
        layer = args.layer or zoo.CONV_CASES[args.case]
    else:
        if args.masks is None:
            raise CliError("masks: --maps needs --masks (a .npz written by PixelMasks.save)")
        maps = load_array(args.maps, args.maps_key, "maps")
        masks = PixelMasks.load(input_file(args.masks, "masks"))
        layer = args.layer or Path(args.maps).stem
        what = f"{args.maps} with {args.masks}"
    t1 = time.perf_counter()
    cmp = compare(
        maps, masks, length=args.length, beam=args.beam, quantile=args.quantile, iou_threshold=args.iou_threshold,
        min_fraction=args.min_fraction, layer=layer, device=args.device, compat=args.netdissect,
    )  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmp.to_csv(out / "compare.csv")
    cmp.dissection.to_csv(out / "netdissect.csv")
    report = LayerReport(cmp.invert, cmp.activations.cpu(), cmp.concepts.to("cpu"), images, top=12)
    intro = (
        f"<p>{html.escape(what)}; {len(masks)} pixel concepts at {masks.height} x {masks.width}.</p>"
        + comparison_html(cmp)
    )
    write_report(out / "report.html", [report], "INVERT and Network Dissection, side by side", intro)
    print(f"{what}; {len(masks)} pixel concepts ({', '.join(masks.names)})")
    print(f"loading and capture {t1 - t0:.1f} s; {cmp.summary()}")
    print(f"{cmp.detectors_line()}\n")
    print(
        "| unit | INVERT label | AUC | its IoU | NetDissect label | IoU | its AUC |\n|---:|---|---:|---:|---|---:|---:|"
    )
    for r in sorted(cmp.rows, key=lambda r: -r["netdissect_iou"])[: args.show]:
        print(
            f"| {r['unit']} | `{r['invert_label']}` | {r['invert_auc']:.3f} | {r['invert_label_iou']:.3f} | "
            f"`{r['netdissect_label']}` | {r['netdissect_iou']:.3f} | {r['netdissect_label_auc']:.3f} |"
        )
    print(f"\nwrote {out / 'compare.csv'}, {out / 'netdissect.csv'} and {out / 'report.html'}")
    return 0


def broden_maps(args):
    """Activation maps of a model on a Broden directory's images (captured to --out/maps, memory-mapped)
    and the directory's pixel labels: (maps, masks, layer, description)."""
    from ..cases import zoo
    from ..dissection.broden import read_broden, require_pillow
    from ..io.capture import capture, load_activations

    if args.image_size < 1:  # checked before any file is read
        raise CliError(f"image-size: expected a positive number of pixels, got {args.image_size}")
    try:
        require_pillow()  # decodes the label PNGs and the images
    except ImportError as e:
        raise CliError(f"broden: {e}") from None
    cats = None if args.categories is None else [c.strip() for c in args.categories.split(",") if c.strip()]
    broden = read_broden(args.broden, cats, args.max_images)
    spec = args.model or "mobilenet_v2"
    model = zoo.load_model(spec)
    layer = args.layer or zoo.EMBEDDED_MODELS.get(spec)
    if layer is None:
        raise CliError(f"layer: --model {spec} needs --layer (a module name, e.g. layer4)")
    batches = broden.image_batches(32, args.image_size)
    paths = capture(model, batches, [layer], reduce="keep", out=Path(args.out) / "maps", progress=not args.quiet)
    maps = load_activations(paths[layer])
    if maps.dim() != 4:
        raise CliError(f"layer: expected {layer} to output [N, C, h, w] maps, got shape {tuple(maps.shape)}")
    skipped = len(broden.skipped_images)
    excluded = ", ".join(f"{k} ({v})" for k, v in broden.excluded.items()) or "none"
    what = (
        f"{spec}, layer {layer}, {len(broden)} Broden images of {args.broden} at {args.image_size} px "
        f"(categories {', '.join(broden.categories)}; {skipped} images without their labels skipped; "
        f"labels left out: {excluded})"
    )
    return maps, broden.masks, layer, what


def cmd_demo(args) -> int:
    from . import demo

    return demo.run(args)


def cmd_circuit(args) -> int:
    from . import circuits

    return circuits.run(args)


def cmd_audit(args) -> int:
    from . import audits

    return audits.run(args)


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors on one line (the command, the option, what was expected and what came;
    --help for the usage), as every other error of the command."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="invert-fast", description="Exact INVERT neuron labeling.")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("explain", help="label every neuron of an activation matrix with INVERT formulas")
    e.add_argument(
        "--activations",
        required=True,
        help="[N, D] activations (.npy, .h5, .safetensors, .pt; sparse: a scipy .npz, a torch sparse .pt, or a delphi "
        "latent cache folder), read in neuron chunks",
    )
    e.add_argument(
        "--activations-key",
        help="dataset / tensor of an .h5, .safetensors or .pt file (default: Y when present, else the only 2-D one)",
    )
    e.add_argument(
        "--labels",
        required=True,
        help="[N, K] 0/1 concept matrix or [N] class indices (.npy, .pt, .h5); with --ids, the [V, K] 0/1 table of "
        "the concepts of each id",
    )
    e.add_argument(
        "--ids",
        help="[N] integer id of each sample (.npy, .pt, .h5), or 'tokens' for a delphi cache's tokens: concepts are "
        "--labels' rows of each sample's id (ConceptSet.from_ids; no [N, K] matrix) (default: none, --labels per sample)",
    )
    e.add_argument("--labels-key", help="entry of a .pt dict or .h5 dataset (default: the only one)")
    e.add_argument(
        "--names",
        help="text file with one concept name per line, UTF-8 (default: c0, c1, ... for a 0/1 matrix; class0, class1, ... "
        "for class indices)",
    )
    e.add_argument(
        "--num-classes",
        type=int_at_least(1),
        default=None,
        help="number of classes of [N] class-index labels, when the data lacks the top classes (default: max + 1)",
    )
    add_search_arguments(e)  # -L, -B, --limit-search, ... --certify: one per SearchParams field
    e.add_argument(
        "--groups",
        help="[N] integer group of each sample (.npy, .pt, .h5), e.g. the sentence of each token: permutations "
        "exchange whole groups of equal size (default: single samples)",
    )
    e.add_argument("--groups-key", help="entry of a .pt dict or .h5 dataset for --groups (default: the only one)")
    e.add_argument(
        "--max-work",
        type=int_at_least(1),
        default=None,
        help="candidate evaluations the exact search or --certify may do (default: no limit)",
    )
    e.add_argument(
        "--metrics",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the columns iou, f1, auprc, correlation, cosine on every label (against the top samples at --alpha); "
        "--no-metrics leaves them empty and skips their cost (default on)",
    )
    e.add_argument("--device", default=None, help="cpu or cuda (default: cpu, or each rank's GPU under torchrun)")
    e.add_argument(
        "--adjust",
        choices=["bh", "bonferroni"],
        default=None,
        help="adjust p-values across neurons (column p_value_adjusted): bh = Benjamini-Hochberg (default: none)",
    )
    e.add_argument("--layer", default="", help="layer name written into the output's layer column (default: empty)")
    e.add_argument("--out", required=True, help="labels.csv or labels.json (required; never one of the inputs)")
    e.add_argument("--quiet", action="store_true", help="no progress line (default: progress on stderr)")
    e.add_argument(
        "--export",
        nargs=2,
        action="append",
        metavar=("FORMAT", "DIR"),
        help="also write the best labels for Neuronpedia (DIR/explanations/ and DIR/explanation_scores/"
        "batch-<n>.jsonl.gz, DIR/config/<table>.jsonl) or delphi (DIR/<hook>_latent<i>.txt); repeatable (default: none)",
    )
    e.add_argument(
        "--author-id",
        default=None,
        help="for --export neuronpedia: the id of the user on your Neuronpedia instance that the explanations "
        "and scores are imported as (its User table; default: none, required with --export neuronpedia)",
    )
    e.add_argument(
        "--model-id", default=None, help="Neuronpedia's model id for --export neuronpedia (default: the cache's model)"
    )
    e.add_argument(
        "--source",
        default=None,
        help="Neuronpedia's source id / delphi's hook name in the exports (default: --layer, or the cache's folder name)",
    )
    e.add_argument(
        "--checkpoint",
        help="folder for finished neuron chunks: a killed run resumes from it, verifying each chunk against "
        "the run's inputs and parameters (default: none)",
    )
    e.add_argument("--chunk", type=int_at_least(1), default=512, help="neurons per checkpointed chunk (default 512)")
    e.add_argument(
        "--max-memory",
        type=int_at_least(1),
        default=None,
        help="bytes of working memory explain may hold (default: 2 GiB on CPU)",
    )
    e.set_defaults(func=cmd_explain)
    t = sub.add_parser(
        "transpose", help="rewrite a sample-major [N, D] .npy as a neuron-major store (<name>.neurons.npy)"
    )
    t.add_argument("store", help="sample-major .npy (as capture writes it)")
    t.add_argument("--out", default=None, help="output path (default: <store>.neurons.npy)")
    t.add_argument("--max-memory", type=int_at_least(1), default=2**28, help="bytes per tile (default 256 MiB)")
    t.set_defaults(func=cmd_transpose)
    r = sub.add_parser("report", help="a self-contained HTML report of a labels file")
    r.add_argument("labels_file", help="labels.csv written by explain / demo")
    r.add_argument("--out", required=True, help="report.html (required; never one of the inputs)")
    r.add_argument("--layer", default=None, help="only this layer of the file (default: every layer)")
    r.add_argument(
        "--activations", help="[N, D] activations of the layer: adds distribution plots (default: none, labels only)"
    )
    r.add_argument(
        "--activations-key", help="entry of a .pt dict or .h5 dataset for --activations (default: the only one)"
    )
    r.add_argument(
        "--concepts",
        help="[N, K] 0/1 or [N] class indices the labels were found with (default: none; needs --activations)",
    )
    r.add_argument("--concepts-key", help="entry of a .pt dict or .h5 dataset for --concepts (default: the only one)")
    r.add_argument(
        "--num-classes",
        type=int_at_least(1),
        default=None,
        help="number of classes of [N] class-index --concepts, when the data lacks the top classes (default: max + 1)",
    )
    r.add_argument("--names", help="concept names, one per line, as given to explain (default: c0.. / class0..)")
    r.add_argument(
        "--tokens",
        help="a token layer's index: the folder capture_tokens(out=) wrote (tokens.npy, ..., texts.json) or a delphi "
        "cache; shows each neuron's top contexts, quantile examples and, with --token-concepts, the label's errors "
        "(needs --activations, the layer's store; default: none)",
    )
    r.add_argument(
        "--tokenizer",
        help="with --tokens: a Hugging Face tokenizer folder (decodes a delphi cache's ids; default: none)",
    )
    r.add_argument(
        "--token-concepts",
        choices=["tokenizer", "all"],
        default=None,
        help="with --tokens: rebuild the concepts the labels were found with (token_concepts; all: with spaCy's "
        "word annotations) to underline where each label holds (default: none)",
    )
    r.add_argument(
        "--top-tokens", type=int_at_least(0), default=100, help="with --token-concepts: token identities (default 100)"
    )
    r.add_argument("--show", type=int_at_least(1), default=24, help="with --tokens: neurons shown (default 24)")
    r.set_defaults(func=cmd_report)
    c = sub.add_parser("compare", help="INVERT and Network Dissection side by side on one conv layer")
    c.add_argument(
        "--case",
        choices=["mnist", "fashion"],
        help="a real model and data set (see invert_fast.cases.zoo); default: none, give --maps and --masks",
    )
    c.add_argument("--maps", help="[N, D, h, w] activation maps (.npy, .pt, .h5) instead of a case (default: none)")
    c.add_argument("--maps-key", help="entry of a .pt dict or .h5 dataset (default: the only one)")
    c.add_argument(
        "--masks", help="pixel concept masks (.npz written by invert_fast.PixelMasks.save), with --maps (default: none)"
    )
    c.add_argument(
        "--broden",
        help="a Broden-format directory (index.csv, label.csv, ...; images/) instead of a case (default: none)",
    )
    c.add_argument(
        "--model",
        help="with --broden: mobilenet_v2 (the embedded ImageNet MobileNetV2; default) or module.path:name, an "
        "nn.Module or a function returning one (e.g. torchvision.models:resnet18)",
    )
    c.add_argument("--categories", help="with --broden: categories to read, comma-separated (default: all)")
    c.add_argument("--max-images", type=int_at_least(1), help="with --broden: read the first N images (default: all)")
    c.add_argument(
        "--image-size", type=int_at_least(1), default=224, help="with --broden: model input size (default 224)"
    )
    c.add_argument(
        "--layer",
        help="module name of the model (default: the case's / features.18 of mobilenet_v2) or a name for --maps",
    )
    c.add_argument(
        "--samples", type=int_at_least(1), default=None, help="images of the case (default: all MNIST / 2,000 Fashion)"
    )
    c.add_argument(
        "--size", type=int_at_least(1), default=160, help="Fashion-MNIST image size fed to MobileNetV2 (default 160)"
    )
    c.add_argument(
        "--length",
        type=int_at_least(1),
        default=1,
        help="formula length of both methods (default 1; > 1: compositional)",
    )
    c.add_argument("--beam", type=int_at_least(1), default=5, help="beam size of both methods (default 5)")
    c.add_argument(
        "--quantile",
        type=fraction(low_open=True, high_open=True),
        default=0.005,
        help="NetDissect's top quantile (default 0.005)",
    )
    c.add_argument("--iou-threshold", type=fraction(), default=0.04, help="NetDissect detector IoU (default 0.04)")
    c.add_argument(
        "--netdissect",
        choices=["invert_fast", "netdissect-lite"],
        default="invert_fast",
        help="Network Dissection's definition: invert_fast (exact quantile at 1 - q, IoU over all unit pixels, "
        "> threshold; default) or netdissect-lite (the original's quantile level, per-category union, >=)",
    )
    c.add_argument("--min-fraction", type=float, default=0.02, help="INVERT's minimum concept fraction (default 0.02)")
    c.add_argument("--device", default=None, help="cpu or cuda (default: where the maps are)")
    c.add_argument("--show", type=int_at_least(0), default=10, help="units printed (default 10)")
    c.add_argument("--out", default="out/compare", help="output folder (default out/compare)")
    c.add_argument("--quiet", action="store_true", help="no progress line")
    c.set_defaults(func=cmd_compare)
    d = sub.add_parser(
        "demo", help="the embedded real cases: MobileNetV2 on Fashion-MNIST (default), --case mnist or --case minilm"
    )
    from . import demo

    demo.add_arguments(d)
    d.set_defaults(func=cmd_demo)
    k = sub.add_parser("circuit", help="which labelled units feed an output unit, as a tree (the embedded real cases)")
    from . import circuits

    circuits.add_arguments(k)
    k.set_defaults(func=cmd_circuit)
    a = sub.add_parser("audit", help="the spurious-correlation audit on a CNN trained with a planted shortcut")
    from . import audits

    audits.add_arguments(a)
    a.set_defaults(func=cmd_audit)
    return p


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"invert-fast: warning: {str(message).splitlines()[0]}", file=file or sys.stderr)


def main(argv=None) -> int:
    import warnings

    args = parser().parse_args(argv)
    shown = warnings.showwarning
    warnings.showwarning = _one_line_warning  # e.g. a checkpoint chunk recomputed: one line, no source echo
    try:
        return args.func(args)
    except (CliError, ValueError, TypeError, KeyError, OSError, EOFError, RuntimeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in msg:
            msg += f": {e.filename}"
        print(f"invert-fast: error: {msg}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":
    raise SystemExit(main())
