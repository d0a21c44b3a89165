"""picklematrix sessions, thin: building envs is picklematrix.envs, recording them picklematrix.recording,
every pin picklematrix.pins, asv's configuration picklematrix.asvconf.

    ./nox -s matrix                    every env of the profile (PICKLEMATRIX_PROFILE, default "default")
    ./nox -s "matrix(cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11)"   one env;  ./nox -s matrix -k py3.13  a subset
    ./nox -s matrix -- --force         re-record envs already recorded for this commit
    ./nox -s tests                     the test suite (what CI runs: .ci/run); -- <pytest args>
    ./nox -s lint                      ruff over src, tests, benchmarks, bench and this file
    ./nox -s report | review           the HTML site and matrix files; an upgrade review

``./nox`` makes nox's own venv (.nox/_nox, with picklematrix.pins.NOX) on first use and runs nox from it;
a ``nox`` installed by other means works too if ``filelock`` is importable beside it.

Environment variables: PICKLEMATRIX_PROFILE (default|full|smoke|...), PICKLEMATRIX_MATRIX (another matrix
file), PICKLEMATRIX_RESULTS (results dir, default ./results), PICKLEMATRIX_MACHINE (machine name),
PICKLEMATRIX_CASES (case dirs, os.pathsep-separated, that REPLACE the built-in corpus cases/; list cases
among them to keep it), PICKLEMATRIX_ONLY (comma-separated case globs),
PICKLEMATRIX_DIRTY_LABEL (record from an uncommitted tree under machine "<machine>-<label>"),
PICKLEMATRIX_TOOLS_VENV (where the asv tools venv lives, default .nox/_tools),
PICKLEMATRIX_REPLICATE=N (record each env N times, copies under "<machine>-rep<i>": A/A pairs for the review),
PICKLEMATRIX_CHROMIUM (the browser for the tests), PICKLEMATRIX_INSTALL_BROWSER=1 (let `tests` apt-get install
chromium when there is none).

Exit codes: 0 all recorded / passed; 1 a session failed (an env error, a failing benchmark, a test);
2 an invalid matrix file (nothing built). report and review exit with their own status (review: 1 something
broke, got slower or could not be compared, 2 bad input).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))

from picklematrix import pins  # noqa: E402 - standard library only

try:
    from picklematrix import asvconf, envs, recording, shards
    from picklematrix.matrix import MatrixError, load_matrix
except ModuleNotFoundError as e:  # the noxfile runs in nox's interpreter, which lacks it
    sys.exit(f"picklematrix: nox's Python ({sys.executable}) lacks {e.name!r}: run nox through ./nox, which "
             f"installs {' '.join(pins.NOX)} into .nox/_nox")

# Interpreters come from the machine (pyenv's installs, .python-version); never download one.
os.environ["UV_PYTHON_DOWNLOADS"] = "never"
os.environ.setdefault("UV_PYTHON_PREFERENCE", "only-system")
nox.options.default_venv_backend = "uv"
nox.options.download_python = "never"  # nox's default "auto" would fetch a standalone build
nox.options.reuse_venv = "yes"
# plain `nox` (and `nox --list --json`, one job per env for a CI matrix) is the main job
nox.options.sessions = ["matrix"]
# Matrix envs run one per CPU at a time (each has its own venv, cluster, kernel and asv results dir;
# only the merge into results/ takes turns). `nox -s matrix -j 1` gives quieter timings, one env at a time.
nox.options.parallel = "auto"


class _NoParallelNotice(logging.Filter):
    """Drops nox's notice that the selected sessions (tests, lint, report, review) ignore --parallel:
    the default above is this file's, not a --parallel the user gave."""

    def filter(self, record):
        return "No selected session allows parallel execution" not in record.getMessage()


logging.getLogger("nox").addFilter(_NoParallelNotice())

PROFILE = os.environ.get("PICKLEMATRIX_PROFILE", "default")
RESULTS = Path(os.environ.get("PICKLEMATRIX_RESULTS", ROOT / "results")).resolve()
try:
    MATRIX = load_matrix(os.environ.get("PICKLEMATRIX_MATRIX", ROOT / "matrix.toml"))
    ENVS = MATRIX.profile(PROFILE).envs
except MatrixError as e:
    # Nothing is built from a bad matrix: say which entry is wrong and stop.
    print(f"picklematrix: invalid matrix, nothing was built:\n{e}", file=sys.stderr)
    sys.exit(2)
recording.remember_run_commit(ROOT)


@contextmanager
def _failing(session):
    """The package's errors end the session with their message."""
    try:
        yield
    except (recording.RecordingError, envs.EnvError) as e:
        session.error(str(e))


@nox.session(venv_backend="uv", allow_parallel=True)
@nox.parametrize(("python", "env_id"), [nox.param(e.python, e.env_id, id=e.env_id) for e in ENVS])
def matrix(session, env_id):
    """One matrix environment: build, verify, run the corpus, record with asv."""
    shard = _shard(session)
    if shard and env_id not in shards.shard_envs([e.env_id for e in ENVS], *shard):
        session.skip(f"not in shard {shard[0]}/{shard[1]} of profile {PROFILE!r}")
    with _failing(session):
        for replica in range(1, recording.replicate_count() + 1):
            recording.record_env(MATRIX.env(env_id), envs.venv_python(session.virtualenv.location), ROOT, RESULTS,
                                 Path(session.create_tmp()).resolve(), replica=replica,
                                 force="--force" in session.posargs, log=session.log, warn=session.warn)


def _shard(session) -> tuple[int, int] | None:
    """``--shard K/N`` among the posargs (this runner's share of the profile), or None."""
    args = session.posargs
    if "--shard" not in args:
        return None
    at = args.index("--shard")
    try:
        return shards.parse_shard(args[at + 1] if at + 1 < len(args) else "")
    except shards.ShardError as e:
        session.error(str(e))


@nox.session(python=False)
def plan(session):
    """The profile's envs as a CI job matrix (JSON on stdout): ./nox -s plan [-- --json PATH]."""
    args = session.posargs
    text = json.dumps(shards.plan(MATRIX, PROFILE))
    if "--json" in args:
        Path(args[args.index("--json") + 1]).write_text(text + "\n")
    print(text)


@nox.session(python=False)
def merge(session):
    """Merge shards' results directories: ./nox -s merge -- DIR [DIR ...] (into PICKLEMATRIX_RESULTS)."""
    if not session.posargs:
        session.error("say which results directories to merge: ./nox -s merge -- shard-1/results shard-2/results")
    try:
        merged = shards.merge([Path(d) for d in session.posargs], RESULTS)
    except shards.ShardError as e:
        session.error(str(e))
    for note in merged.notes:
        session.warn(note)
    session.log(f"merged {len(session.posargs)} results directories into {RESULTS}: {merged.copied} files copied, "
                f"{merged.identical} identical copies met")


@nox.session(python=pins.TESTS_PYTHON, venv_backend="uv")
def tests(session):
    """The test suite (real clusters, real envs, a real browser; the slow end-to-end tests included)."""
    _browser(session)
    session.install(*pins.TESTS, "-e", ".")
    session.run("python", "-c", envs.COMPILE_PACKAGES, silent=True)
    session.run("python", "-m", "pytest", "-v", "--durations=15", *session.posargs)


def _browser(session):
    """Chromium for the browser test: found, installed only when asked to (PICKLEMATRIX_INSTALL_BROWSER=1)."""
    if envs.find_chromium():
        return
    if os.environ.get(envs.INSTALL_BROWSER_VAR) != "1":
        session.warn(envs.chromium_missing())
        return
    commands = envs.install_chromium_commands()
    if commands is None:
        session.error(f"{envs.INSTALL_BROWSER_VAR}=1, but installing chromium needs root and apt-get. "
                      + envs.chromium_missing())
    session.log(f"{envs.INSTALL_BROWSER_VAR}=1: installing Debian's chromium for the browser test")
    for command in commands:
        session.run(*command, external=True, env={"DEBIAN_FRONTEND": "noninteractive"})


@nox.session(python=pins.TESTS_PYTHON, venv_backend="uv")
def lint(session):
    """ruff (pinned in picklematrix.pins.LINT), and actionlint over .github/workflows (picklematrix.workflow_lint)."""
    session.install(*pins.LINT)
    session.run("ruff", "check", "src", "tests", "benchmarks", "bench", "noxfile.py", "hatch_build.py")
    session.run("python", "-m", "picklematrix.workflow_lint", env={"PYTHONPATH": str(ROOT / "src")})


@nox.session(python=False)
def report(session):
    """asv's HTML site working offline, the matrix page, results/table.md and results/table.json.

    nox -s report [-- --commit REV --html DIR --strict]; browse with any static server, e.g.
    python3 -m http.server --bind 127.0.0.1 --directory html 8080
    """
    _run_tools_module(session, "picklematrix.report", "--results", str(RESULTS),
                      "--html", str(asvconf.default_html_dir(ROOT, RESULTS)))


@nox.session(python=False)
def review(session):
    """An upgrade review: nox -s review -- --from ENV --to ENV (or --change pydantic=2.8.2..2.9.2).

    Exits with the review's own status: 0 nothing broke, 1 something broke, got slower or could not be
    compared, 2 bad input.
    """
    _run_tools_module(session, "picklematrix.report.review", "--results", str(RESULTS))


def _run_tools_module(session, module, *args):
    # nox reports every failed session as exit 1; the report and the review give 1 and 2 distinct meanings,
    # so their status is passed through as nox's own.
    with _failing(session):
        tools = envs.tools_python(ROOT)
    code = subprocess.run([tools, "-m", module, *args, *session.posargs], cwd=ROOT, check=False).returncode
    if code:
        session.log(f"{module} exited with status {code}")
        raise SystemExit(code)
