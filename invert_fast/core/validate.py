"""Input conversion and validation shared by the public functions. Errors name the argument,
what was expected and what came."""

import warnings
from collections.abc import Sequence

import numpy as np
import torch

_RANKABLE = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_EXACT_IN_FLOAT64 = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32)


def to_tensor(value, name: str) -> torch.Tensor:
    """A torch tensor view of a tensor, numpy array or nested list (no copy where possible)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray | list | tuple):
        arr = np.asarray(value)
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise TypeError(f"{name}: expected numbers, got a numpy array of dtype {arr.dtype}")
        if not arr.flags.writeable:  # e.g. a memory-mapped capture: read in place, never written
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return torch.from_numpy(arr)
        return torch.from_numpy(arr)
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(value).__name__}")


def as_activations(activations, name: str = "activations") -> torch.Tensor:
    """[N, D] floating tensor in its own precision; integer inputs widen to float64 when exact.

    Ranks are taken in the returned dtype, so nothing is rounded before ranking."""
    x = to_tensor(activations, name)
    if x.dim() != 2:
        raise ValueError(
            f"{name}: expected a 2-D array [N samples, D neurons], got shape {tuple(x.shape)}"
            + (" (use x[:, None] for a single neuron)" if x.dim() == 1 else "")
        )
    if x.dtype in _RANKABLE:
        return x
    if x.dtype in _EXACT_IN_FLOAT64:
        return x.to(torch.float64)
    if x.dtype == torch.int64:
        if x.numel() and int(x.abs().max()) > 2**53:
            raise ValueError(f"{name}: int64 values beyond 2^53 cannot be ranked exactly; got max |x| > 2^53")
        return x.to(torch.float64)
    raise TypeError(f"{name}: expected a real floating or integer dtype, got {x.dtype}")


def as_binary_labels(labels, name: str = "labels") -> torch.Tensor:
    """[N, K] bool tensor from 0/1 (bool, integer or floating) input; anything else is an error."""
    y = to_tensor(labels, name)
    if y.dim() != 2:
        raise ValueError(
            f"{name}: expected a 2-D 0/1 matrix [N samples, K concepts], got shape {tuple(y.shape)}"
            + (" (use ConceptSet.from_classes for class indices)" if y.dim() == 1 else "")
        )
    if y.dtype == torch.bool:
        return y
    if y.is_complex():
        raise TypeError(f"{name}: expected 0/1 values, got complex dtype {y.dtype}")
    bad = (y != 0) & (y != 1)
    if bool(bad.any()):
        n_bad = int(bad.sum())
        pos = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name}: expected only 0 and 1, got {n_bad} other value(s), e.g. {y[pos].item()!r} at (sample, concept) {pos}"
        )
    return y != 0


def validate_names(names, count: int, name: str = "names") -> list[str]:
    """Concept names: `count` unique, non-empty strings without surrounding whitespace or control characters.

    (Control characters are excluded so formula texts sort like their operand lists; see search.py.)"""
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
        raise TypeError(f"{name}: expected a sequence of {count} strings, got {type(names).__name__}")
    names = list(names)
    if len(names) != count:
        raise ValueError(f"{name}: expected {count} names (one per concept), got {len(names)}")
    seen: dict[str, int] = {}
    for i, s in enumerate(names):
        if not isinstance(s, str):
            raise TypeError(f"{name}[{i}]: expected a string, got {type(s).__name__} {s!r}")
        if not s or s != s.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in s):
            raise ValueError(
                f"{name}[{i}]: expected a non-empty name without surrounding whitespace or control characters, got {s!r}"
            )
        if s in seen:
            raise ValueError(f"{name}: names must be unique, got {s!r} at positions {seen[s]} and {i}")
        seen[s] = i
    return names


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """An int >= minimum (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)
