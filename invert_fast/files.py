"""File helpers that every layer may import (a leaf: imports nothing from invert_fast).

- atomic_write: write a file under a temporary name beside it and move it into place only on
  success, so a crash (or SIGKILL) never leaves a partial file under the real name; the partial
  files of killed writers are removed by the next write of the same path.
- package_file: the path of a data file shipped inside an installed package, with an install hint.
- drop_resident_pages: let the OS drop the pages of a read-only memory map once it has been read.
- spreadsheet_safe / spreadsheet_text: the one rule for text cells of every CSV we write (no cell a
  spreadsheet would evaluate as a formula), and its exact inverse for reading them back.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import tempfile
from pathlib import Path


class atomic_write:  # noqa: N801  (used like open(): `with atomic_write(path) as f`)
    """Open a temporary file beside `path` and move it into place only on success.

    Args:
        path: the final path (its folder is created).
        binary: open in binary mode (default text, UTF-8, newline="" so csv controls line ends).

    Example:
        >>> with atomic_write("out/labels.csv") as f:
        ...     f.write("layer,neuron\\n")
    """

    def __init__(self, path, binary: bool = False):
        self.path, self.binary = Path(path), binary

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        host = _host()
        sweep_partials(self.path, host)
        fd, self.tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.{host}.{os.getpid()}.", suffix=".partial", dir=self.path.parent
        )
        self.f = os.fdopen(fd, "wb") if self.binary else os.fdopen(fd, "w", newline="", encoding="utf-8")
        return self.f

    def __exit__(self, exc_type, exc, tb):
        self.f.close()
        if exc_type is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the file from other users
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def _host() -> str:
    return "".join(c if c.isalnum() or c == "-" else "_" for c in socket.gethostname()) or "host"


def sweep_partials(path, host: str | None = None) -> list[Path]:
    """Remove the partial files that killed writers of `path` left beside it: those named by
    atomic_write on this host whose process no longer runs (live writers and other hosts' files are
    left alone). Returns the removed paths."""
    path = Path(path)
    host = host or _host()
    removed = []
    prefix = f".{path.name}.{host}."
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.{glob_escape(host)}.*.partial"):
        pid = tmp.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            try:
                tmp.unlink()
                removed.append(tmp)
            except FileNotFoundError:  # another process swept it first
                pass
    return removed


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def package_file(package: str, relative: str, install: str) -> Path:
    """Path of a data file inside an installed package, with an install hint when missing.

    Args:
        package: importable package name (e.g. "ccexam"); relative: path inside it; install: the
            command that installs it (shown in the error).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {package!r} is not installed; install it with: {install}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {package!r}; reinstall it with: {install}")
    return path


# OWASP's CSV-injection rule: a cell starting with one of these is a formula to Excel/LibreOffice/
# Sheets. "'" is escaped too, so that reading back (strip one leading "'") is exact for every text.
_SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")


def spreadsheet_safe(text: str) -> str:
    """A text cell for CSV: prefixed with "'" when it starts with = + - @ tab CR or "'" (so no spreadsheet
    evaluates it); other text unchanged. Write numbers as numbers, never through this.

    Example:
        >>> spreadsheet_safe("=1+2 & ~x"), spreadsheet_safe("sneaker | boot")
        ("'=1+2 & ~x", 'sneaker | boot')
    """
    return "'" + text if text.startswith(_SPREADSHEET_TRIGGERS) else text


def spreadsheet_text(cell: str) -> str:
    """The text spreadsheet_safe(text) was made from (removes the one "'" it may have added)."""
    return cell[1:] if cell.startswith("'") else cell


def write_frame_csv(path, frame) -> None:
    """Write a pandas DataFrame as CSV atomically, its text cells through spreadsheet_safe."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    frame = frame.copy()
    for col in frame.columns:  # object and string columns (pandas >= 3 has a str dtype); numbers stay
        if not (is_numeric_dtype(frame[col]) or is_bool_dtype(frame[col])):
            frame[col] = frame[col].map(lambda v: spreadsheet_safe(v) if isinstance(v, str) else v)
    with atomic_write(path) as f:
        frame.to_csv(f, index=False)


def drop_resident_pages(array) -> None:
    """Let the OS drop the resident pages of a read-only numpy memory map (np.load(..., mmap_mode="r"))
    once it has been read: they stay in the page cache but stop counting in this process's memory (a
    [200,000, 200] bool label matrix: 40 MB). Anything else is left alone; advisory, never an error."""
    import mmap

    import numpy as np

    while isinstance(array, np.ndarray) and not isinstance(array, np.memmap) and array.base is not None:
        array = array.base  # views of a memmap lead back to it
    m = getattr(array, "_mmap", None)
    if isinstance(array, np.memmap) and m is not None and hasattr(mmap, "MADV_DONTNEED"):
        try:
            m.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError, AttributeError):
            pass
