"""One progress line on stderr, for terminals and for logs alike.

On a terminal the line is redrawn in place at every update; written to a file or a CI log (not a
TTY), a full line is printed at the first update, then at most every `every` seconds, plus the final
one, so long runs show that they advance without flooding the log.
"""

from __future__ import annotations

import sys
import time


class ProgressLine:
    """Example:
    >>> p = ProgressLine(enabled=True)
    >>> for i in range(3):
    ...     p.update(f"batch {i + 1}/3", final=i == 2)
    """

    def __init__(self, enabled: bool = True, every: float = 10.0, stream=None):
        self.enabled, self.every = enabled, every
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()
        self.last = -float("inf")  # in a log the first update shows at once
        self.open = False  # a redrawn line without its newline yet (terminal only)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def update(self, text: str, final: bool = False) -> None:
        if not self.enabled:
            return
        if self.tty:
            print("\r" + text, end="\n" if final else "", file=self.stream, flush=True)
            self.open = not final
        elif final or time.perf_counter() - self.last >= self.every:
            print(text, file=self.stream, flush=True)
            self.last = time.perf_counter()

    def close(self) -> None:
        """End a redrawn terminal line (after an interruption, say)."""
        if self.open:
            print(file=self.stream, flush=True)
            self.open = False
