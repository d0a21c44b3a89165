"""The progress a run prints: one line per cell on a pipe, a self-updating line on a terminal.

A recording (``nox -s matrix``) sends the run's output to a log file and reads these lines back
(:func:`parse`) to show a line every few seconds instead (picklematrix.record.logs).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from typing import NamedTuple

SURPRISE = " SURPRISE"
# one cell's line on a pipe, as Progress.update writes it: "12/480 [#...] 41s family/case [method @context] outcome"
LINE = re.compile(r"^(?P<done>\d+)/(?P<total>\d+) \[[#.]*\] \d+s \S+ \[[^\]]* @\w+\] \S+(?P<surprise> SURPRISE)?$")


class Cell(NamedTuple):
    """What a progress line says: cells done, of how many, and whether this one was a surprise."""

    done: int
    total: int
    surprise: bool


def parse(line: str) -> Cell | None:
    """The progress of one of Progress's lines on a pipe; None for any other line."""
    m = LINE.match(line.rstrip("\r\n"))
    return Cell(int(m["done"]), int(m["total"]), bool(m["surprise"])) if m else None


class Progress:
    """One line per cell on a pipe; a self-updating line on a terminal."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.started = time.monotonic()
        self._lock = threading.Lock()  # a run's two lanes report their cells from two threads

    def update(self, cell) -> None:
        """Count ``cell`` (a CellResult) done and show it."""
        with self._lock:
            self._update(cell)

    def _update(self, cell) -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        width = 16
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        mark = SURPRISE if cell.surprise else ""
        # count first: nox -j's status board shows only the start of a session's last line
        line = (
            f"{self.done}/{self.total} [{bar}] {elapsed:.0f}s "
            f"{cell.family}/{cell.case} [{cell.method} @{cell.context}] {cell.outcome}{mark}"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + line[: os.get_terminal_size(self.stream.fileno()).columns - 1])
            if cell.surprise:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
