"""A short private TMPDIR for the processes of a recording (the harness, asv), and their environment.

Unix socket paths have at most 107 bytes, and multiprocessing (distributed's forkserver workers), asv's
forkserver and the kernel's ZMQ sockets all put theirs under TMPDIR. nox points TMPDIR into the session's venv
dir, <checkout>/.nox/<session>/tmp: from an ordinary checkout path that is too long, and the worker processes
never start (the run hangs). The harness and asv get a short one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from picklematrix.record.resultsdir import RecordingError

SHORT_TMP_BASES = ("/tmp", "/var/tmp")
SHORT_TMP_MAX = 40  # leaves 67 bytes for e.g. pymp-XXXXXXXX/listener-XXXXXXXX below the private dir


def short_tmp_base() -> str:
    """A writable directory with a short path to make private temporary directories in."""
    for base in (os.environ.get("TMPDIR"), *SHORT_TMP_BASES):
        if base and len(base) <= SHORT_TMP_MAX and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
            return base
    raise RecordingError(f"no writable temporary directory with a path of at most {SHORT_TMP_MAX} characters "
                         f"(tried TMPDIR, {', '.join(SHORT_TMP_BASES)}): Unix sockets need one; set TMPDIR")


@contextlib.contextmanager
def short_tmpdir():
    """A private directory with a short path, for the TMPDIR of the harness and asv; removed afterwards.

    Cell output the harness kept for a ``harness-error`` (``picklematrix-cells-*``, named in the cell's
    detail) stays, and so does the directory holding it.
    """
    path = tempfile.mkdtemp(prefix="pm-", dir=short_tmp_base())
    try:
        yield path
    finally:
        for entry in Path(path).iterdir():
            if entry.name.startswith("picklematrix-cells-") and entry.is_dir() and any(entry.iterdir()):
                continue
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.rmdir(path)  # not empty: kept cell output


def process_env(python: str, tmpdir: str) -> dict:
    """The environment of a process of the env ``python``'s venv: on PATH first, TMPDIR ``tmpdir``."""
    venv = str(Path(python).parents[1])
    return {**os.environ, "VIRTUAL_ENV": venv, "PATH": f"{venv}/bin{os.pathsep}{os.environ.get('PATH', '')}",
            "TMPDIR": tmpdir}
