"""Activations of named layers of any torch.nn.Module, in memory or streamed to disk.

    acts = capture(model, loader, ["features.18", "classifier.1"])          # {name: [N, D] tensor}
    paths = capture(model, loader, layers, out="acts/")                      # {name: Path to .npy}
    x = load_activations(paths["features.18"])                               # [N, D], memory-mapped

On disk each layer is one .npy file (samples x neurons), written while the data streams through:
rows are appended under a temporary name and the file is renamed into place only once complete, so
an interrupted capture never leaves a file that looks finished. .npy was chosen over HDF5/zarr: no
extra dependency, readable by any numpy, and memory-mappable, so explain() pages in only what it reads.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .progress import ProgressLine

CONV_REDUCTIONS = ("mean", "max", "keep")
SEQUENCE_REDUCTIONS = ("mean", "last", "tokens")
_HEADER_BYTES = 256  # room for the final .npy header, rewritten in place once N is known


def module_names(layers) -> list[str]:
    """A list of module names, checked: a module object in it is named by its class, never printed whole."""
    out = list(layers)
    for name in out:
        if not isinstance(name, str):
            raise TypeError(
                f"layers: expected module names (str), got a {type(name).__name__}; pass a dict "
                "{name: module} to capture a module object"
            )
    return out


def resolve_layers(model: nn.Module, layers) -> dict[str, nn.Module]:
    """{name: module} from a mapping, or from dotted module names (model.get_submodule)."""
    if isinstance(layers, Mapping):
        out = dict(layers)
    elif isinstance(layers, str) or not isinstance(layers, Sequence):
        raise TypeError(
            f"layers: expected a list of module names or a dict name -> module, got {type(layers).__name__}"
        )
    else:
        out = {}
        for name in module_names(layers):
            try:
                out[name] = model.get_submodule(name)
            except AttributeError:
                known = [n for n, _ in model.named_modules() if n][:8]
                raise ValueError(f"layers: the model has no module {name!r} (some it has: {known})") from None
    if not out:
        raise ValueError("layers: expected at least one layer, got none")
    for name, mod in out.items():
        if not isinstance(mod, nn.Module):
            raise TypeError(f"layers[{name!r}]: expected an nn.Module, got {type(mod).__name__}")
    return out


def reduce_output(out, reduce: str, sequence: str) -> torch.Tensor:
    """A layer's output as [samples, neurons] (or [B, C, H, W] maps with reduce="keep").

    Conv maps [B, C, H, W]: spatial "mean", "max" or "keep". Sequences [B, T, D]: token "mean",
    "last", or "tokens" (each token a sample: [B * T, D]). [B, D] passes through.
    """
    if isinstance(out, tuple | list):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"layer output: expected a tensor (or a tuple starting with one), got {type(out).__name__}")
    if out.dim() == 2:
        return out
    if out.dim() == 4:
        if reduce == "keep":
            return out
        return out.flatten(2).mean(2) if reduce == "mean" else out.flatten(2).amax(2)
    if out.dim() == 3:
        if sequence == "tokens":
            return out.reshape(-1, out.shape[-1])
        return out.mean(1) if sequence == "mean" else out[:, -1]
    raise ValueError(f"layer output: expected [B, D], [B, T, D] or [B, C, H, W], got shape {tuple(out.shape)}")


class NpyWriter:
    """Appends [rows, ...] float blocks to `path` (a .npy), atomically renamed into place on close."""

    def __init__(self, path: Path, dtype: np.dtype):
        self.path, self.dtype = path, np.dtype(dtype)
        self.tmp = path.with_name(f".{path.name}.partial")
        self.f = open(self.tmp, "wb")
        self.f.write(b"\0" * _HEADER_BYTES)
        self.rows, self.shape_tail = 0, None

    def append(self, block: np.ndarray) -> None:
        if self.shape_tail is None:
            self.shape_tail = block.shape[1:]
        elif block.shape[1:] != self.shape_tail:
            raise ValueError(f"layer output changed shape between batches: {self.shape_tail} then {block.shape[1:]}")
        self.f.write(np.ascontiguousarray(block, dtype=self.dtype).tobytes())
        self.rows += block.shape[0]

    def close(self) -> Path:
        shape = (self.rows, *(self.shape_tail if self.shape_tail is not None else (0,)))  # 1-D blocks: ()
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        text = repr(header).encode("latin1")
        pad = _HEADER_BYTES - 10 - len(text) - 1
        if pad < 0:
            raise ValueError(f"array shape {shape} does not fit the reserved .npy header")
        self.f.seek(0)
        self.f.write(b"\x93NUMPY\x01\x00" + (_HEADER_BYTES - 10).to_bytes(2, "little") + text + b" " * pad + b"\n")
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self.f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def _inputs(batch):
    if isinstance(batch, torch.Tensor):
        return (batch,), {}
    if isinstance(batch, Mapping):
        return (), dict(batch)
    if isinstance(batch, tuple | list) and batch and isinstance(batch[0], torch.Tensor):
        return (batch[0],), {}
    raise TypeError(f"data: expected batches of tensors, (inputs, ...) tuples or dicts, got {type(batch).__name__}")


@contextlib.contextmanager
def hooked_run(handles, writers: dict, line):
    """The forward hooks removed and the progress line closed however the run ends; on an error the
    writers' partial files removed too (nothing half-written is left to look finished)."""
    try:
        yield
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        for h in handles:
            h.remove()
        line.close()


def model_device(model: nn.Module) -> torch.device:
    """Where a model runs: its first parameter's device (the CPU for a model without parameters).

    Example:
        >>> model_device(nn.Linear(2, 2))
        device(type='cpu')
    """
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def forward_with_hooks(model: nn.Module, hooks: dict, batches) -> None:
    """Run every batch through the model (inference mode) with forward hooks {module: hook(module, inputs,
    output)} registered for the run only, removed however it ends.

    Example:
        >>> forward_with_hooks(model, {model.fc: lambda m, i, o: outs.append(o)}, [x[:64], x[64:]])
    """
    handles = [m.register_forward_hook(h) for m, h in hooks.items()]
    try:
        with torch.inference_mode():
            for b in batches:
                model(b)
    finally:
        for h in handles:
            h.remove()


def move_to(args, kwargs, device):
    """A batch's positional and keyword tensors on `device` (anything else as is)."""
    move = lambda t: t.to(device, non_blocking=True) if isinstance(t, torch.Tensor) else t  # noqa: E731
    return tuple(move(a) for a in args), {k: move(v) for k, v in kwargs.items()}


def capture(
    model: nn.Module,
    data: Iterable,
    layers,
    *,
    device=None,
    reduce: str = "mean",
    sequence: str = "mean",
    autocast: torch.dtype | None = None,
    out=None,
    dtype=np.float32,
    progress: bool = False,
) -> dict:
    """Run the data through the model and collect the outputs of the named layers.

    Args:
        model: any nn.Module (put in eval mode by the caller; run under torch.inference_mode here).
        data: a DataLoader or any iterable of batches: tensors, (inputs, ...) tuples, or dicts of
            keyword arguments.
        layers: dotted module names (["features.18", "classifier.1"]) or a dict name -> module.
        device: where the model runs (default: where its first parameter is).
        reduce: conv maps [B, C, H, W]: "mean" or "max" over space, or "keep" the maps.
        sequence: sequences [B, T, D]: token "mean", "last" token, or "tokens" (every token a sample).
        autocast: e.g. torch.bfloat16 to run the model under autocast (activations stored as float32).
        out: a folder: stream every layer to out/<name>.npy (crash-safe) instead of memory.
        dtype: numpy dtype of the on-disk arrays (float32 default; float16 halves the disk).
        progress: a progress line on stderr.

    Returns:
        {name: [N, D] float32 tensor} (or [N, C, H, W] with reduce="keep"), or {name: Path} with out.

    Example:
        >>> acts = capture(model, loader, ["features.18", "classifier.1"])   # {name: [N, D]}
        >>> capture(model, loader, ["layer4"], out="acts/")                   # streamed to acts/layer4.npy
    """
    if reduce not in CONV_REDUCTIONS:
        raise ValueError(f"reduce: expected one of {CONV_REDUCTIONS}, got {reduce!r}")
    if sequence not in SEQUENCE_REDUCTIONS:
        raise ValueError(f"sequence: expected one of {SEQUENCE_REDUCTIONS}, got {sequence!r}")
    mods = resolve_layers(model, layers)
    device = torch.device(device) if device is not None else model_device(model)
    writers: dict[str, NpyWriter] = {}
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in mods}
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for name in mods:
            writers[name] = NpyWriter(folder / f"{layer_file_name(name)}.npy", dtype)

    def hook(name):
        def fn(_module, _inputs, output):
            block = reduce_output(output, reduce, sequence).detach().float()
            if name in writers:
                writers[name].append(block.cpu().numpy())
            else:
                parts[name].append(block.cpu())

        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in mods.items()]
    total = len(data) if hasattr(data, "__len__") else None
    line, seen = ProgressLine(progress), 0
    ctx = torch.autocast(device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext()
    with hooked_run(handles, writers, line), torch.inference_mode(), ctx:
        for i, batch in enumerate(data):
            args, kwargs = move_to(*_inputs(batch), device)
            model(*args, **kwargs)
            seen += 1
            if progress:
                rate = seen / max(line.elapsed(), 1e-9)
                of = f"/{total}" if total else ""
                line.update(f"capture: batch {i + 1}{of}, {rate:.1f} batches/s", final=total == i + 1)
    if writers:
        return {name: w.close() for name, w in writers.items()}
    return {name: torch.cat(p) if p else torch.zeros(0) for name, p in parts.items()}


def load_activations(path) -> torch.Tensor:
    """A captured .npy as a read-only, memory-mapped torch tensor (nothing is read until used)."""
    arr = np.load(path, mmap_mode="r")
    with warnings.catch_warnings():  # the tensor is never written to; no copy for read-only maps
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(arr)


def layer_file_name(layer: str) -> str:
    """The .npy file name of a layer: its name with anything but letters, digits and ._- as "_"."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in layer) or "layer"
