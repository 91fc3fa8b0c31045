"""File helpers that every layer may import (a leaf: imports nothing from invert_fast).

- atomic_write: write a file under a temporary name beside it and move it into place only on
  success, so a crash (or SIGKILL) never leaves a partial file under the real name.
- package_file: the path of a data file shipped inside an installed package, with an install hint.
"""

from __future__ import annotations

import importlib.util
import os
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
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
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
