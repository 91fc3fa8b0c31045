"""Input conversion and validation shared by the public functions. Errors name the argument,
what was expected and what came."""

import warnings
from collections.abc import Sequence

import numpy as np
import torch

_RANKABLE = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_EXACT_IN_FLOAT64 = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.uint16, torch.uint32)
# Exactness limit: doubled rank sums and 2U = 2 (S - P (P + 1) / 2) stay below 2^53 (float64 AUCs,
# packed sums) for N up to 1.3e8 samples.
MAX_SAMPLES = 130_000_000


def check_samples(n: int, name: str) -> int:
    """N in [1, MAX_SAMPLES], checked from a shape before anything of that size is allocated."""
    if n < 1:
        raise ValueError(f"{name}: there are no samples (N = 0); expected at least one row")
    if n > MAX_SAMPLES:
        raise ValueError(f"{name}: at most {MAX_SAMPLES:,} samples can be ranked exactly, got N = {n:,}")
    return n


def check_columns(d: int, name: str) -> int:
    """D (neurons) >= 0, and small enough that a [D + 1] int64 column index fits in this machine's memory,
    checked from a shape before anything of that size is allocated (a transposed or misnamed input
    otherwise fails as an allocation error of hundreds of GB)."""
    if d < 0:
        raise ValueError(f"{name}: expected a shape (N, D) with D >= 0, got D = {d}")
    need, have = 8 * (d + 1), physical_memory()
    if have and need > have:
        raise ValueError(
            f"{name}: D = {d:,} neurons would need {need / 2**30:,.0f} GiB for the column index alone, more than "
            f"this machine's {have / 2**30:,.0f} GiB of memory; is the shape [N samples, D neurons] (not transposed)?"
        )
    return d


def physical_memory() -> int:
    """Bytes of physical memory (0 where the platform does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 0


def as_device(device, name: str = "device") -> torch.device:
    """torch.device(device), refusing a CUDA device that this torch cannot see in one line (not a
    driver traceback from the first tensor moved there).

    Example:
        >>> as_device("cpu")
        device(type='cpu')
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"{name}: expected a torch device such as 'cpu' or 'cuda:0', got {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}: {dev} was asked for, but torch sees no CUDA device")
    return dev


def to_tensor(value, name: str) -> torch.Tensor:
    """A torch tensor view of a tensor, numpy array or nested list (no copy where possible)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray | list | tuple):
        arr = np.asarray(value)
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise TypeError(f"{name}: expected numbers, got a numpy array of dtype {arr.dtype}")
        if any(st < 0 for st in arr.strides):  # torch views need non-negative strides: copy (e.g. x[::-1])
            arr = np.ascontiguousarray(arr)
        if arr.dtype.byteorder == ">":  # torch holds native byte order only
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if not arr.flags.writeable:  # e.g. a memory-mapped capture: read in place, never written
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return torch.from_numpy(arr)
        return torch.from_numpy(arr)
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(value).__name__}")


def as_integers(value, name: str) -> torch.Tensor:
    """An integer tensor (ids, indices, codes) as given: floating, complex and bool dtypes are refused,
    never truncated (1.5 would silently become 1).

    Example:
        >>> as_integers(np.array([3, 1]), "tokens").dtype
        torch.int64
    """
    x = to_tensor(value, name)
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name}: expected integers, got dtype {x.dtype}")
    return x


def as_activations(activations, name: str = "activations") -> torch.Tensor:
    """[N, D] floating tensor in its own precision; integer inputs widen to float64 when exact.

    Ranks are taken in the returned dtype, so nothing is rounded before ranking."""
    x = to_tensor(activations, name)
    if x.dim() != 2:
        raise ValueError(
            f"{name}: expected a 2-D array [N samples, D neurons], got shape {tuple(x.shape)}"
            + (" (use x[:, None] for a single neuron)" if x.dim() == 1 else "")
        )
    check_samples(x.shape[0], name)
    return as_rankable(x, name)


def as_rankable(x: torch.Tensor, name: str = "activations") -> torch.Tensor:
    """x in a dtype the ranking kernels take, in its own precision: floats as they are, integers widened
    to float64 where exact (uint64 and int64 up to 2^53), anything else an error. Dense activations and
    the stored values of sparse ones both go through here."""
    if x.dtype in _RANKABLE:
        return x
    if x.dtype in _EXACT_IN_FLOAT64:
        return x.to(torch.float64)
    if x.dtype in (torch.int64, torch.uint64):
        # uint64 has few CPU kernels: read its bits as int64 (values >= 2^63 turn negative, and fail).
        xi = x.view(torch.int64) if x.dtype == torch.uint64 else x
        lo = -(2**53) if x.dtype == torch.int64 else 0
        if xi.numel() and (int(xi.max()) > 2**53 or int(xi.min()) < lo):
            raise ValueError(f"{name}: {x.dtype} values beyond 2^53 cannot be ranked exactly; got max |x| > 2^53")
        return xi.to(torch.float64)
    raise TypeError(f"{name}: expected a real floating or integer dtype, got {x.dtype}")


def as_binary_labels(labels, name: str = "labels") -> torch.Tensor:
    """[N, K] bool tensor from 0/1 (bool, integer or floating) input; anything else is an error."""
    y = to_tensor(labels, name)
    if y.dim() != 2:
        raise ValueError(
            f"{name}: expected a 2-D 0/1 matrix [N samples, K concepts], got shape {tuple(y.shape)}"
            + (" (use ConceptSet.from_classes for class indices)" if y.dim() == 1 else "")
        )
    check_samples(y.shape[0], name)
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
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(
                f"{name}[{i}]: cannot be written as UTF-8 ({e.reason} at character {e.start}), got {s!r}"
            ) from None
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
