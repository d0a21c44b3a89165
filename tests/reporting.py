"""Shared, expensive fixtures of the report/review/browser tests: a real mini matrix, recorded once.

Three envs through the real ``nox -s matrix`` (uv envs, the harness, asv):
A (the baseline, pydantic 2.8.2) twice — ``PICKLEMATRIX_REPLICATE=2`` makes the A/A pair —, B (pydantic 2.9.2,
the fix of the notebook namespace capture) once, and one env that cannot be resolved (an env error). Plus the
real report built over them. pytest fixtures are per module, so the work is memoised here for the session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from .conftest import ROOT

A = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"       # dask#11448's era
B = "cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11"       # the real fix (pydantic#10113)
BROKEN = "cp2.2.1-dask2026.8.0-pyd2.14.4-py3.11"  # unresolvable: dask 2026.8.0 needs cloudpickle >= 3
ONLY = "functions/lambda_square,pydantic/toplevel_model,containers/dict_with_lock,escaping/*"
MACHINE = "rptest"

MATRIX = textwrap.dedent(f"""
    [axes]
    python = ["3.11"]
    cloudpickle = ["2.2.1", "3.0.0"]
    dask = ["2024.6.2", "2026.8.0"]
    pydantic = ["2.8.2", "2.9.2", "2.14.4"]

    [profiles.default]
    baseline = "{A}"
    envs = ["{A}", "{B}", "{BROKEN}"]
""")

# A case whose root cause is real text full of angle brackets: stdlib pickle refusing a local lambda names
# it "<function ...<locals>.<lambda> at 0x...>". The pages must show it as text, never as markup.
ESCAPING_CASE = textwrap.dedent('''
    CASE = {
        "family": "escaping",
        "summary": "A task pickles a local lambda with stdlib pickle: the error text is full of <locals>",
        "tags": ["report-test"],
        "expect": "task-error",
    }
    import dask


    def pickle_a_local_lambda():
        import pickle

        return pickle.dumps(lambda: 0)


    result = dask.delayed(pickle_a_local_lambda)()
    expected = b""  # never reached: the task raises
''')
BUILTIN = ["functions/lambda_square", "pydantic/toplevel_model", "containers/dict_with_lock"]


@dataclass
class Recorded:
    tmp: Path
    results: Path
    machine: str  # "rptest" (a clean clone records it)
    replica: str
    commit: str
    logs: str

    def sidecar(self, env_id: str) -> dict:
        for path in (self.results / self.machine).glob("*.outcomes"):
            data = json.loads(path.read_text())
            if data.get("env_id") == env_id:
                return data
        raise AssertionError(f"no sidecar for {env_id} in {self.results / self.machine}:\n{self.logs[-4000:]}")

    def copy(self, dest: Path) -> Path:
        """A private copy of the results, for tests that damage them."""
        shutil.copytree(self.results, dest, ignore=shutil.ignore_patterns("reviews", "table.*"))
        return dest


_MEMO: dict = {}
# For working on the report: a directory where the mini matrix is recorded once and then reused by later test
# sessions (delete it to record again). Unset (the default, and CI), every session records its own.
REUSE_VAR = "PICKLEMATRIX_TEST_MINI_MATRIX"


NEEDED = {A: 2, B: 1, BROKEN: 1}  # recordings per env: A and its A/A copy, B, the env error


def _recordings_at(results: Path) -> tuple[str | None, str | None, list]:
    """(the machine most envs were recorded under, the commit their files are keyed by, the envs missing).

    Records are keyed by the harness commit that last changed the code they depend on (its fingerprint), which
    need not be HEAD: the key is read from the files.
    """
    found: dict[str, dict] = {}
    keys = set()
    for path in results.glob("*/*-*"):
        key, _, rest = path.name.partition("-")
        if path.name.endswith(".env-error"):
            env_id = rest[:-len(".env-error")]
        elif path.suffix == ".outcomes":
            env_id = json.loads(path.read_text()).get("env_id")
        else:
            continue
        keys.add(key)
        base = path.parent.name.removesuffix("-rep2")
        found.setdefault(base, {}).setdefault(env_id, 0)
        found[base][env_id] += 1
    if not found:
        return None, None, list(NEEDED)
    assert len(keys) == 1, f"records keyed by several commits in one fresh clone: {sorted(keys)}"
    base = max(found, key=lambda m: sum(min(n, NEEDED.get(e, 0)) for e, n in found[m].items()))
    return base, keys.pop(), [env for env, n in NEEDED.items() if found[base].get(env, 0) < n]


def _nox(tmp: Path, results: Path, sessions, *posargs, **extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, PICKLEMATRIX_MATRIX=str(tmp / "matrix.toml"), PICKLEMATRIX_RESULTS=str(results),
               PICKLEMATRIX_ONLY=ONLY, PICKLEMATRIX_CASES=str(tmp / "cases"), PICKLEMATRIX_DIRTY_LABEL="rp",
               PICKLEMATRIX_MACHINE=MACHINE, PICKLEMATRIX_TOOLS_VENV=str(tmp / "tools"))
    for name in ("PICKLEMATRIX_REPLICATE", "PICKLEMATRIX_PROFILE"):
        env.pop(name, None)
    env.update(extra)
    args = [sys.executable, "-m", "nox", "--envdir", str(tmp / "envs"), "-s", *(f"matrix({s})" for s in sessions)]
    if posargs:
        args += ["--", *posargs]
    return subprocess.run(args, cwd=tmp / "clone", env=env, capture_output=True, text=True, timeout=1500,
                          check=False)


def recorded(tmp_path_factory) -> Recorded:
    """The mini matrix, recorded once per test session.

    It is recorded from a clone of HEAD with nox envs of its own: other engineers commit in this tree while the
    suite runs, and a session whose HEAD moves is refused (one run's results describe one state of the code),
    so recording from the shared tree failed again and again.
    """
    if "recorded" in _MEMO:
        return _MEMO["recorded"]
    reuse = os.environ.get(REUSE_VAR)
    if reuse and (Path(reuse) / "recorded.json").exists():
        _MEMO["recorded"] = Recorded(**{k: (Path(v) if k in ("tmp", "results") else v) for k, v in
                                        json.loads((Path(reuse) / "recorded.json").read_text()).items()})
        return _MEMO["recorded"]
    if reuse:
        tmp = Path(reuse)
        assert not tmp.exists(), f"{REUSE_VAR}={reuse}: holds no finished recording (an interrupted one?): remove it"
        tmp.mkdir(parents=True)
    else:
        tmp = tmp_path_factory.mktemp("mini-matrix")
    subprocess.run(["git", "clone", "-q", str(ROOT), str(tmp / "clone")], check=True, timeout=120)
    (tmp / "matrix.toml").write_text(MATRIX)
    (tmp / "cases" / "escaping").mkdir(parents=True)
    (tmp / "cases" / "escaping" / "pickle_local_lambda.py").write_text(ESCAPING_CASE)
    # `picklematrix run --cases DIR` runs DIR *instead of* the built-in corpus (while the asv suite adds DIR to
    # it), so the built-in cases of the test are copied next to the extra one.
    for case in BUILTIN:
        (tmp / "cases" / case).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "cases" / f"{case}.py", tmp / "cases" / f"{case}.py")
    results = tmp / "results"
    runs = [_nox(tmp, results, [A], PICKLEMATRIX_REPLICATE="2"), _nox(tmp, results, [B, BROKEN])]
    logs = "\n".join(p.stdout + p.stderr for p in runs)[-6000:]
    assert runs[0].returncode == 0, logs
    assert runs[1].returncode != 0, "the unresolvable env must fail its session:\n" + logs
    base, key, stale = _recordings_at(results)
    assert not stale and base is not None, (stale, logs)
    commit = subprocess.run(["git", "rev-parse", key], cwd=tmp / "clone", capture_output=True, text=True,
                            check=True).stdout.strip()
    machines = sorted(p.name for p in results.iterdir() if p.is_dir() and p.name != "logs")  # (logs: no machine)
    assert machines == [base, f"{base}-rep2"], (machines, logs)
    _MEMO["recorded"] = Recorded(tmp, results, base, f"{base}-rep2", commit, logs)
    if reuse:
        (tmp / "recorded.json").write_text(json.dumps({k: str(v) for k, v in vars(_MEMO["recorded"]).items()}))
    return _MEMO["recorded"]


@dataclass
class Published:
    site: Path
    results: Path
    proc: subprocess.CompletedProcess
    table: dict
    path: str  # the PATH it was built with: node and npm are not on it
    asset_cache: Path


def published(tmp_path_factory) -> Published:
    """The real report (``python -m picklematrix.report``, as ``nox -s report`` runs it) over the mini matrix."""
    if "published" in _MEMO:
        return _MEMO["published"]
    rec = recorded(tmp_path_factory)
    results = rec.copy(tmp_path_factory.mktemp("published") / "results")
    review = subprocess.run([sys.executable, "-m", "picklematrix", "review", "--results", str(results),
                             "--change", "pydantic=2.8.2..2.9.2", "--quiet"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert review.returncode == 0, review.stdout + review.stderr
    site = results.parent / "html"
    # as on a machine without Node.js: node and npm off PATH, and an empty cache, so that asv's web assets come
    # from the npm registry by Python
    bare = path_without(results.parent / "bin", *NODE_TOOLS)
    cache = results.parent / "npm-cache"
    proc = subprocess.run([sys.executable, "-m", "picklematrix.report", "--results", str(results), "--html",
                           str(site), "--asset-cache", str(cache)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False, env=dict(os.environ, PATH=bare))
    table = json.loads((results / "table.json").read_text()) if (results / "table.json").exists() else {}
    _MEMO["published"] = Published(site, results, proc, table, bare, cache)
    return _MEMO["published"]


NODE_TOOLS = ("node", "nodejs", "npm", "npx", "corepack")


def path_without(bin_dir: Path, *names: str) -> str:
    """A PATH of one directory holding a link to every program on this PATH but ``names``: the machine as if
    they were not installed (their directory, /usr/bin, also holds git and the rest)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = bin_dir / entry.name
            if entry.name in names or target.exists() or not os.access(entry.path, os.X_OK) or entry.is_dir():
                continue
            target.symlink_to(entry.path)
    return str(bin_dir)


def preview_url(proc, timeout=60) -> str:
    """The matrix page's URL a running ``picklematrix preview`` printed."""
    import queue
    import threading

    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if line.startswith("matrix page: "):
            return line.split(": ", 1)[1].strip()
    proc.kill()
    raise AssertionError(f"no URL from picklematrix preview: {''.join(seen)}{proc.stderr.read()}")
