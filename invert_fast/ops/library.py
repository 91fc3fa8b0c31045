"""Loading of the compiled operator library (invert_fast._C) and the device checks of its kernels.

The extension is imported on first use, not when invert_fast is imported, so the pure-Python parts
(the reference implementation, Formula, file readers) work without a build, and a broken build fails
with one clear error at the first operator call. Importing _C runs the C++ TORCH_LIBRARY
registrations (csrc/ops.cpp: the schemas; csrc/cpu, csrc/cuda: the kernels); the fake (meta)
kernels of invert_fast.ops.fake are registered right after.

The compiled library lives beside the package's __init__: invert_fast/_C*.so (setup.py builds it
from csrc/ as the extension module "invert_fast._C").
"""

from __future__ import annotations

import importlib

import torch

REBUILD_HINT = (
    "this invert_fast build has CPU kernels only; to use CUDA tensors install a CUDA build of torch and "
    "the CUDA toolkit, then rebuild with: INVERT_FAST_CUDA=1 pip install --no-build-isolation -e ."
)
_state: dict = {"loaded": False, "error": None}


def load() -> None:
    """Import the compiled operators (once) and register their fake kernels.

    Raises:
        RuntimeError: when the extension is missing or cannot be loaded, saying how to build it.
    """
    if _state["loaded"]:
        return
    if _state["error"] is not None:
        raise RuntimeError(_state["error"])
    try:
        importlib.import_module("invert_fast._C")
    except ImportError as e:
        _state["error"] = (
            f"invert_fast's compiled operators are not available ({e}); build them with "
            "`pip install --no-build-isolation -e .` (or `bash scripts/setup.sh`)"
        )
        raise RuntimeError(_state["error"]) from None
    from . import fake

    fake.register()  # meta kernels: torch.compile / FakeTensor can trace code that calls the operators
    _state["loaded"] = True


def is_loaded() -> bool:
    """True once the compiled operators are registered with torch."""
    return bool(_state["loaded"])


def library():
    """torch.ops.invert_fast, with the compiled operators loaded."""
    load()
    return torch.ops.invert_fast


def built_with_cuda() -> bool:
    """True when the extension was compiled with its CUDA kernels.

    Example:
        >>> device = "cuda" if built_with_cuda() and torch.cuda.is_available() else "cpu"
    """
    return bool(library().built_with_cuda())


def check_device(t: torch.Tensor, what: str) -> None:
    """Raise a clear error for tensors the compiled kernels cannot run on."""
    if t.device.type == "cuda":
        if not built_with_cuda():
            raise RuntimeError(f"{what}: got a CUDA tensor, but {REBUILD_HINT}")
    elif t.device.type not in ("cpu", "meta"):
        raise RuntimeError(f"{what}: tensors must be on the CPU or a CUDA device, got {t.device}")
