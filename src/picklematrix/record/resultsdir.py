"""The results directory: where one env's record goes, writing there safely, and what counts as recorded.

Envs record side by side (nox -j), each into a private directory; here their files join ``results/`` under a
lock, the asv result and its sidecar one right after the other. Every write that fails says, in one line,
which path and what to do (:func:`unwritable`), instead of a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from picklematrix import sidecar as sidecars
from picklematrix.envs import venvs
from picklematrix.record import fingerprint


class RecordingError(Exception):
    """This env was not (fully) recorded; the message says why and what to do."""


@dataclass
class Target:
    """Where one recording of one env goes: ``results/<machine>/<commit[:8]>-...``."""

    results: Path
    commit: str
    machine: str

    def path(self, name: str, suffix: str) -> Path:
        return self.results / self.machine / f"{self.commit[:8]}-{name}{suffix}"


def unwritable(path: Path, results: Path, error: BaseException) -> RecordingError:
    """The one-line error for a results directory that cannot be written: which path, what to do."""
    reason = getattr(error, "strerror", None) or str(error)
    return RecordingError(f"cannot write {path} ({reason}): the results directory {results} is not a writable "
                          "directory; make it one, or point PICKLEMATRIX_RESULTS at another")


@contextlib.contextmanager
def writing_results(path: Path, results: Path):
    """Turns an OSError (or a SidecarError) writing ``path`` under ``results`` into :func:`unwritable`'s error."""
    try:
        yield
    except (OSError, sidecars.SidecarError) as e:
        raise unwritable(path, results, e) from None


def check_results_writable(target: Target) -> None:
    """Fail now, in one line, when the results cannot be written: not after minutes of building and running."""
    where = target.results / target.machine
    with writing_results(where, target.results):
        where.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=where)
        os.close(fd)
        os.unlink(probe)


def record_env_error(target: Target, env, stage: str, message: str, env_id: str | None = None) -> Path:
    """The ``.env-error`` file of an env that could not be built: the report shows it in the env's place.

    ``message`` is kept whole (up to its last 20,000 characters): a resolver's explanation ("No solution
    found ... because ...") comes after its first line. ``env_id``: the record's, when it is not ``env``'s
    own (a skew pair's, picklematrix.envs.skew).
    """
    env_id = env_id or env.env_id
    out = target.path(env_id, ".env-error")
    with writing_results(out, target.results):
        sidecars.write_atomic(out, json.dumps({
            "env": {**env.as_dict(), "env_id": env_id}, "commit": target.commit, "machine": target.machine, "stage": stage,
            "message": message[-20000:], "recorded": time.time()}, indent=1))
    return out


def merge_asv_results(stage: Path, results: Path, machine: str, result_name: str,
                      sidecar: Path | None = None) -> None:
    """Move one env's asv recording from its private results dir ``stage`` into ``results``.

    asv rewrites ``benchmarks.json`` and ``<machine>/machine.json`` on every run, so envs running at
    the same time (nox -j) each record into a dir of their own; here, one at a time, their files join
    the shared one (the same corpus gives the same ``benchmarks.json``). ``sidecar``, the staged outcome
    sidecar, joins with its asv result: both are copied first, then put in place one right after the other,
    and only then is the env's ``.partial`` marker removed.
    """
    lock = results / ".merge.lock"
    with contextlib.ExitStack() as held:
        with writing_results(lock, results):
            held.enter_context(venvs.lock(lock))
        with writing_results(results / machine, results):
            (results / machine).mkdir(parents=True, exist_ok=True)
        for rel in ("benchmarks.json", f"{machine}/machine.json"):
            _copy_into(stage / rel, results / rel, results)
        record = [(stage / machine / result_name, results / machine / result_name)]
        if sidecar is not None:
            final = results / machine / (Path(result_name).stem + sidecars.SUFFIX)
            record.append((sidecar, final))
        staged = [(_copy_beside(src, dst, results), dst) for src, dst in record]
        for tmp, dst in staged:
            with writing_results(dst, results):
                os.replace(tmp, dst)
        if sidecar is not None:
            sidecars.partial_path(final).unlink(missing_ok=True)


def _copy_beside(src: Path, dst: Path, results: Path) -> Path:
    """A copy of ``src`` next to ``dst``, under a private name, ready to replace it."""
    tmp = dst.with_name(f"{dst.name}.tmp-{os.getpid()}")
    with writing_results(dst, results):
        shutil.copyfile(src, tmp)
    return tmp


def _copy_into(src: Path, dst: Path, results: Path) -> None:
    tmp = _copy_beside(src, dst, results)
    with writing_results(dst, results):
        os.replace(tmp, dst)


def recorded(result_file: Path, sidecar: Path, case_dirs=None) -> sidecars.Sidecar | None:
    """The complete record at these paths, or None: "already recorded" means the asv result is there, the
    sidecar is complete, no ``.partial`` says a recording of it was interrupted, and it ran the case folders
    asked for now (``case_dirs``, default PICKLEMATRIX_CASES) as they are now (their content digest,
    picklematrix.record.fingerprint.case_mismatch; :func:`picklematrix.record.fingerprint.stale_reason` says why not)."""
    if not result_file.exists() or sidecars.partial_path(sidecar).exists():
        return None
    try:
        found = sidecars.read(sidecar)
    except sidecars.SidecarError:
        return None
    if not found.complete or fingerprint.case_mismatch(found.head, case_dirs) is not None:
        return None
    return found
