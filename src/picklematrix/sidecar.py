"""The outcome sidecar (``*.outcomes``): the one module that writes, reads and validates it.

asv keeps no exception text, so each asv result file has a sidecar next to it holding the harness's cells
(outcome, expectation, root cause, samples, ...) and the run's head (env versions, cluster, broken cases).
Writers go through :class:`SidecarWriter`; readers through :func:`read`. Standard library only: this runs
inside every matrix environment as well as in the report's.

A file is ``{"format": 1, <head fields>, "complete": bool, "cells": [cell, ...]}``; ``docs/results.md``
describes the fields. The complete file replaces what was there atomically (write a private temporary file in
the same directory, then ``os.replace``): a reader never sees half of it, whatever stops the writer.

A run in progress writes to ``<path>.partial`` (:func:`partial_path`); only the complete sidecar replaces
``<path>``. A complete record from an earlier run at the same path therefore survives a run that is stopped
(SIGKILL, a cancelled CI job), and the ``.partial`` left behind names the interrupted run. The progress is
appended, one line per cell after a first line that is the head (itself a sidecar with no cells): a run's writes
cost what its cells weigh, once, where rewriting the whole file after every cell cost the square of their number
(hours for a corpus of thousands of cells). :func:`read` reads both layouts; a last line cut short by a stop is
left out.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = 1
SUFFIX = ".outcomes"
PARTIAL = ".partial"
CELL_FIELDS = ("case", "family", "method", "context", "outcome")


class SidecarError(Exception):
    """A sidecar cannot be written or read; the message names the file and what to do."""


def cell_key(cell: dict) -> str:
    """``family/case|method|context``: how asv's benchmark parameters and the report name one cell."""
    return f"{cell['family']}/{cell['case']}|{cell['method']}|{cell['context']}"


def partial_path(path: str | os.PathLike) -> Path:
    """Where a run writes its progress until it completes: ``<path>.partial``."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL)


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` in one step; the directory is created if needed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise SidecarError(f"cannot write {path}: {e.strerror or e}; choose a results directory you can "
                           "write to (PICKLEMATRIX_RESULTS=DIR, or --json PATH)") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SidecarWriter:
    """Writes one run's sidecar: the head once, then each cell as it is done, then the complete file.

    The progress grows by one line per cell (``complete: false`` until :meth:`finish`), so a harness that
    dies loses nothing already measured, and a cell costs one append of its own line. Each cell is serialized
    once, when it is added.

    ``staging`` (the default): the progress goes to ``<path>.partial`` and only :meth:`finish` replaces
    ``path`` (then removes the ``.partial``). A re-run over a complete sidecar that is stopped midway leaves
    that complete sidecar as it was, never a partial one in its place. ``staging=False`` writes the progress
    to ``path`` itself.
    """

    def __init__(self, path: str | os.PathLike | None, head: dict, *, staging: bool = True):
        self.path = None if path is None else Path(path)
        self.progress_path = None if path is None else (partial_path(path) if staging else self.path)
        self.head = dict(head)
        self._cells: list[str] = []
        self._started = False

    def start(self) -> None:
        """Write the head with no cells yet: an unwritable place fails here, before anything has run."""
        self._started = True
        if self.path is None:
            return
        write_atomic(self.progress_path, json.dumps(self._head(complete=False, cells=[])) + "\n")

    def add(self, cell: dict) -> None:
        """Add a finished cell: appended to the progress as one line."""
        if not self._started:
            self.start()
        line = json.dumps(cell)
        self._cells.append(line)
        if self.path is None:
            return
        try:
            fd = os.open(self.progress_path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, (line + "\n").encode())  # one write: a stop leaves the line whole or cut, never mixed
            finally:
                os.close(fd)
        except OSError as e:
            raise SidecarError(f"cannot write {self.progress_path}: {e.strerror or e}; choose a results directory "
                               "you can write to (PICKLEMATRIX_RESULTS=DIR, or --json PATH)") from None

    def finish(self, **head) -> None:
        """Mark the run complete, adding ``head``'s fields (e.g. ``timing``) to the head."""
        self.head.update(head)
        if self.path is None:
            return
        text = json.dumps(self._head(complete=True), indent=1)
        # the head as json.dumps writes it, its closing brace replaced by the already serialized cells
        text = text[: text.rindex("}")].rstrip() + ',\n "cells": [\n' + ",\n".join(self._cells) + "\n ]\n}\n"
        write_atomic(self.path, text)
        if self.progress_path != self.path:
            # after the complete file is in place: a stop between the two leaves a stale .partial beside a
            # complete sidecar, which readers name, never a missing record
            self.progress_path.unlink(missing_ok=True)

    def _head(self, *, complete: bool, **more) -> dict:
        head = {k: v for k, v in self.head.items() if k not in ("cells", "complete", "format")}
        return {"format": FORMAT, **head, "complete": complete, **more}


def add_head(path: str | os.PathLike, **fields) -> None:
    """Add ``fields`` to the head of the complete sidecar at ``path``, replacing it atomically: what a recording
    knows of an env that the run inside it does not (``requirements``: the file it was read from, the lines
    skipped)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SidecarError(f"{path}: cannot add {', '.join(fields)} to the outcome sidecar: {e}") from None
    if not isinstance(data, dict) or not data.get("complete", True):
        raise SidecarError(f"{path}: cannot add {', '.join(fields)}: not a complete outcome sidecar")
    cells = data.pop("cells", [])
    writer = SidecarWriter(path, {**data, **fields}, staging=False)
    writer._cells = [json.dumps(c) for c in cells]
    writer.finish()


@dataclass
class Sidecar:
    """One sidecar as read: its head, its valid cells, and what was wrong with the rest."""

    path: Path
    head: dict
    cells: list = field(default_factory=list)
    complete: bool = True
    malformed: int = 0  # cells left out: missing fields or an unknown outcome

    @property
    def env(self) -> dict:
        return self.head.get("env") or {}

    @property
    def python(self) -> str | None:
        return self.env.get("python")

    @property
    def versions(self) -> dict:
        return dict(self.env.get("versions") or {})

    @property
    def requirements(self) -> dict:
        """The requirements file an env on demand was read from: ``file``, ``sha256``, the lines ``skipped``
        (``line``, ``package``, ``reason``, ``text``), ``pins`` (``all`` or ``needed``) and the pins ``left_out``
        by ``--pins needed``; {} for an env not read from one."""
        found = self.head.get("requirements")
        return dict(found) if isinstance(found, dict) else {}

    @property
    def extra(self) -> dict:
        """The installed versions of the env's extra pins ({} for an env of the axes only)."""
        return dict(self.head.get("extra") or {})

    def by_key(self) -> dict:
        """{``family/case|method|context``: cell}."""
        return {cell_key(c): c for c in self.cells}


def _valid_cell(cell, outcomes) -> bool:
    return (isinstance(cell, dict) and all(isinstance(cell.get(k), str) for k in CELL_FIELDS)
            and (outcomes is None or cell["outcome"] in outcomes))


def read(path: str | os.PathLike, *, outcomes=None) -> Sidecar:
    """Read and validate a sidecar.

    Raises :class:`SidecarError` for a file that cannot be used at all (missing, unreadable, truncated, not a
    sidecar, a newer format). A partial run (``complete: false``) and malformed cells are not errors: they are
    reported on the returned :class:`Sidecar` (``complete``, ``malformed``) for the caller to name.
    ``outcomes``: the known outcome names; a cell with another outcome counts as malformed.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SidecarError(f"{path}: cannot read the outcome sidecar: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        data = _progress(text)
        if data is None:
            raise SidecarError(f"{path}: not valid JSON (truncated? the harness may have been killed while an "
                               f"older version wrote it): {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise SidecarError(f"{path}: not an outcome sidecar (no 'cells' list)")
    version = data.get("format", FORMAT)
    if not isinstance(version, int) or version > FORMAT:
        raise SidecarError(f"{path}: sidecar format {version!r} is newer than this picklematrix reads "
                           f"({FORMAT}); upgrade picklematrix")
    head = {k: v for k, v in data.items() if k not in ("cells", "complete", "format")}
    valid = [c for c in data["cells"] if _valid_cell(c, outcomes)]
    return Sidecar(path=path, head=head, cells=valid, complete=bool(data.get("complete", True)),
                   malformed=len(data["cells"]) - len(valid))


def _progress(text: str) -> dict | None:
    """A run's progress as :class:`SidecarWriter` appends it (a head line, then a line per cell), as one sidecar;
    None when ``text`` is not that. A last line cut short (the run stopped mid-write) is left out."""
    lines = text.split("\n")
    try:
        data = json.loads(lines[0])
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("cells") != []:
        return None
    rest = [line for line in lines[1:] if line.strip()]
    for i, line in enumerate(rest):
        try:
            data["cells"].append(json.loads(line))
        except ValueError:
            if i < len(rest) - 1:
                return None  # only the last line may be cut short
    return data
