"""Building and recording an env that no nox session is parametrized for: an env on demand (picklematrix.envs.spec)
for the review, a bisect step.

The env is recorded exactly as ``nox -s matrix`` records it (:func:`picklematrix.record.recording.record_env`: the same
harness run, asv run and merge), into a venv of its own under ``<checkout>/.nox/on-demand/``, made with uv from
the machine's interpreter (never a downloaded one). A record already there is reused.
"""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

from picklematrix import sidecar as sidecars
from picklematrix.envs import skew, venvs
from picklematrix.envs.ids import Env, Source, extras_match
from picklematrix.record import fingerprint, recording, resultsdir
from picklematrix.versions import ABSENT


def env_key(env: Env) -> str:
    """A directory name for ``env``: its env id (``+<digest>`` of its extra pins when it has any)."""
    return env.env_id


def env_from_dict(data: dict) -> Env:
    """The inverse of ``Env.as_dict()``."""
    return Env(python=data["python"], cloudpickle=data["cloudpickle"], dask=data["dask"], pydantic=data["pydantic"],
               extra=tuple(sorted((data.get("extra") or {}).items())),
               source=Source.from_dict(data["requirements"]) if data.get("requirements") else None)


def make_venv(env: Env, where: Path) -> str:
    """A venv at ``where`` with the machine's python ``env.python`` (kept when it is there); its interpreter.
    One session at a time makes it: two skew pairs of one cluster env start together (nox starts the pairs
    first), and uv refuses a venv directory another has just made."""
    python = venvs.venv_python(where)
    with venvs.lock(where.parent / f".{where.name}.lock"):
        if Path(python).exists():
            return python
        proc = subprocess.run([venvs.uv(), "venv", "-q", "-p", env.python, str(where)], capture_output=True,
                              text=True, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    if proc.returncode != 0:
        raise venvs.EnvError("install", f"{env.env_id}: cannot make a venv with python {env.python} (interpreters "
                                       f"come from the machine, e.g. `pyenv install {env.python}`; none is "
                                       f"downloaded): {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return python


@contextmanager
def selection(only: list[str] | None = None, case_dirs: list[str] | None = None):
    """PICKLEMATRIX_ONLY / PICKLEMATRIX_CASES for the recordings made inside (recording reads them)."""
    saved = {k: os.environ.get(k) for k in ("PICKLEMATRIX_ONLY", "PICKLEMATRIX_CASES")}
    try:
        if only is not None:
            os.environ["PICKLEMATRIX_ONLY"] = ",".join(only)
        if case_dirs is not None:
            os.environ["PICKLEMATRIX_CASES"] = os.pathsep.join(str(Path(d).resolve()) for d in case_dirs)
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


def find_record(results: Path, commit: str, env: Env, machine: str = "*", case_dirs=None):
    """``env``'s complete record at ``commit`` in ``results`` (its sidecar), or None: same python minor version,
    versions of the axes and extra pins (``Env.identity_extra``, against the sidecar head's ``extra``), a
    complete sidecar, no ``.partial`` beside it, its asv result there, and the content digest of the case
    folders asked for now (``case_dirs``, default PICKLEMATRIX_CASES; picklematrix.record.fingerprint.case_mismatch)."""
    wanted_extra = env.identity_extra()
    for path in sorted(Path(results).glob(f"{machine}/{commit[:8]}-*{sidecars.SUFFIX}")):
        if not path.with_suffix(".json").exists() or sidecars.partial_path(path).exists():
            continue
        try:
            sc = sidecars.read(path)
        except sidecars.SidecarError:
            continue
        v = sc.versions
        if (sc.complete and (sc.python or "").startswith(env.python + ".") and v.get("dask") == env.dask
                and v.get("distributed") == env.dask and v.get("cloudpickle") == env.cloudpickle
                and (v.get("pydantic") or ABSENT) == env.pydantic
                and skew.SEPARATOR not in (sc.head.get("env_id") or "")
                and extras_match(sc.head.get("extra") or {}, wanted_extra)
                and fingerprint.case_mismatch(sc.head, case_dirs) is None):
            return sc
    return None


def record(env: Env, checkout: Path, results: Path, *, venv_root: Path | None = None, force: bool = False,
           log=print, warn=print, cluster=None) -> str:
    """Build ``env`` (if needed) and record it into ``results`` as ``nox -s matrix`` does; a record already there
    is reused without building anything. ``cluster``: compute on it (a picklematrix.record.clusters.ClusterSource).
    Returns the record's env id. Raises :class:`picklematrix.record.recording.RecordingError` (an env error is
    recorded too)."""
    commit, machine = recording.recording_target(checkout)
    if cluster is None and not force and find_record(results, commit, env, machine) is not None:
        log(f"{env.env_id}: already recorded for {commit[:8]} in {Path(results) / machine}")
        return env.env_id
    where = (venv_root or checkout / ".nox" / "on-demand") / env_key(env)
    try:
        python = make_venv(env, where)
    except venvs.EnvError as e:
        target = resultsdir.Target(results, commit, machine)
        path = resultsdir.record_env_error(target, env, e.stage, str(e))
        raise recording.RecordingError(f"{e}\n(recorded in {path})") from None
    tmp = where / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return recording.record_env(env, python, checkout, results, tmp.resolve(), force=force, log=log, warn=warn,
                                cluster=cluster)
