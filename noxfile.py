"""picklematrix's sessions, declared only: each parses its arguments with picklematrix.cli (the grammar of the
``picklematrix`` command of the same name) and calls the package. Loading this file reads matrix.toml and the
command line, nothing else: no git, no uv, no network (``./nox --list``).

    ./nox -s matrix                    every env and skew pair of the profile (--profile, default "default")
    ./nox -s "matrix(cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11)"   one env;  ./nox -s matrix -k py3.13  a subset
    ./nox -s matrix -- --env "python=3.11 pydantic=~=2.10" | --env requirements.txt | --change pydantic=2.10.6
                                       envs on demand instead (picklematrix.record.targets)
    ./nox -s review -- --change pydantic=2.8.2..2.9.2 | --from A --to B     an upgrade review
    ./nox -s bisect -- --change pydantic=2.8.2..2.9.2 --only notebook/dask_11448_report
    ./nox -s report | preview | plan | merge | comment | alert
    ./nox -s tests [-- PYTEST ARGS]    the test suite (what CI runs: .ci/run);  ./nox -s lint
    ./nox -s SESSION -- --help         the session's options (picklematrix SESSION --help is the same)

Results are keyed by the last commit touching the code they depend on (picklematrix.record.fingerprint), not HEAD.
``./nox`` makes nox's own venv (.nox/_nox, with picklematrix.pins.NOX) on first use and runs nox from it; a
``nox`` installed by other means works too if ``filelock`` and ``packaging`` are importable beside it.

Environment variables (docs/matrix-toml.md): PICKLEMATRIX_PROFILE, _ONLY, _CASES, _RESULTS (fallbacks for
--profile, --only, --cases, --results), PICKLEMATRIX_MATRIX (another matrix file), PICKLEMATRIX_MACHINE,
PICKLEMATRIX_DIRTY_LABEL, PICKLEMATRIX_TOOLS_VENV, PICKLEMATRIX_REPLICATE, PICKLEMATRIX_CHROMIUM,
PICKLEMATRIX_INSTALL_BROWSER.

Exit codes: 0 all recorded / passed; 1 a session failed (an env error, a failing benchmark, a test); 2 bad input
(an unknown option, an invalid matrix file: nothing built). report, review, bisect, comment and alert exit with
their own status (docs/development.md).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))

from picklematrix import pins  # noqa: E402 - standard library only

try:
    from picklematrix import cli
    from picklematrix.envs.matrix import MatrixError, load_matrix
    from picklematrix.envs.spec import SpecError
    from picklematrix.record import logs
    from picklematrix.record.recording import RUN_DIR_VAR
    from picklematrix.record.targets import TargetError, longest_first, targets
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
# Matrix envs compute one per CPU at a time (picklematrix.record.recording.run_slot), and nox runs twice as many
# sessions: the others build their envs meanwhile (from a cold uv cache, mostly downloads), then wait for a slot.
# Each has its own venv, cluster, kernel and asv results dir; only the merge into results/ takes turns.
# `nox -s matrix -j 1` gives quieter timings, one env at a time.
nox.options.parallel = 2 * (os.cpu_count() or 1)


class _NoParallelNotice(logging.Filter):
    """Drops nox's notice that the selected sessions (tests, lint, report, review) ignore --parallel:
    the default above is this file's, not a --parallel the user gave."""

    def filter(self, record):
        return "No selected session allows parallel execution" not in record.getMessage()


logging.getLogger("nox").addFilter(_NoParallelNotice())

# Every session's arguments, checked now: a typo stops nox (exit 2) before anything is built; -- --help prints the
# session's help and exits. The matrix session's arguments choose which matrix sessions exist.
ARGS = cli.nox_args(sys.argv)
try:
    MATRIX = load_matrix(os.environ.get("PICKLEMATRIX_MATRIX", ROOT / "matrix.toml"))
    # nox starts its sessions in this order (picklematrix.record.targets.longest_first)
    TARGETS = {t.session_id: t for t in longest_first(targets(ARGS["matrix"], MATRIX))}
except (MatrixError, TargetError, SpecError, ValueError) as e:
    # Nothing is built from a bad matrix or a bad --env (a requirements file without dask): say which and stop.
    print(f"picklematrix: nothing was built:\n{e}", file=sys.stderr)
    sys.exit(2)

if "--parallel-worker" not in sys.argv:
    # One nox run records under one fingerprint commit, read by its first recording and shared through this
    # directory with the sessions that nox -j runs in processes of their own (picklematrix.record.recording).
    os.environ[RUN_DIR_VAR] = os.path.join(tempfile.gettempdir(), f"picklematrix-run-{os.getpid()}")
    atexit.register(shutil.rmtree, os.environ[RUN_DIR_VAR], ignore_errors=True)

# The envs' progress lines (picklematrix.record.logs): nox -j prints a session's output only when the session ends,
# so when the console is not a terminal this (nox's own) process prints them as they come. Full logs: results/logs/.
logs.setup_console(relay=any(name in ARGS for name in ("matrix", "review", "bisect")))


def _args(session):
    """The session's arguments, parsed by the ``picklematrix`` command of the same name."""
    name = session.name.split("(", 1)[0]
    return cli.parse(name, list(session.posargs), prog=cli.nox_prog(name))


@contextmanager
def _failing(session):
    """The package's errors end the session with their message."""
    from picklematrix.envs.spec import SpecError
    from picklematrix.envs.venvs import EnvError
    from picklematrix.record.recording import RecordingError

    try:
        yield
    except (RecordingError, EnvError, SpecError) as e:
        session.error(str(e))


@nox.session(venv_backend="uv", allow_parallel=True)
@nox.parametrize(("python", "target"), [nox.param(t.python, key, id=key) for key, t in TARGETS.items()])
def matrix(session, target):
    """One matrix target: an env or a client/cluster skew pair of the profile, or an env on demand
    (``-- --env SPEC``, ``--change NAME=[A..]B``): build it, run the corpus, record it with asv.
    ``-- --help`` lists the options; ``picklematrix matrix`` does the same one target after another."""
    from picklematrix.envs.venvs import venv_python
    from picklematrix.record.sessions import record_target, skip_reason

    args = _args(session)
    reason = skip_reason(TARGETS[target], args, list(TARGETS))
    if reason:
        session.skip(reason)
    with _failing(session):
        record_target(TARGETS[target], args, ROOT, python=venv_python(session.virtualenv.location),
                      tmp=Path(session.create_tmp()).resolve(), log=session.log, warn=session.warn)


@nox.session(python=pins.TESTS_PYTHON, venv_backend="uv")
def tests(session):
    """The test suite (real clusters, real envs, a real browser; the slow end-to-end tests included).
    ``-- PYTEST ARGS`` go to pytest."""
    from picklematrix.envs import venvs

    _browser(session)
    session.install(*pins.TESTS, "-e", ".")
    session.run("python", "-c", venvs.COMPILE_PACKAGES, silent=True)
    session.run("python", "-m", "pytest", "-v", "--durations=15", *session.posargs)


def _browser(session):
    """Chromium for the browser test: found, installed only when asked to (PICKLEMATRIX_INSTALL_BROWSER=1)."""
    from picklematrix.envs import venvs

    if venvs.find_chromium():
        return
    if os.environ.get(venvs.INSTALL_BROWSER_VAR) != "1":
        session.warn(venvs.chromium_missing())
        return
    commands = venvs.install_chromium_commands()
    if commands is None:
        session.error(f"{venvs.INSTALL_BROWSER_VAR}=1, but installing chromium needs root and apt-get. "
                      + venvs.chromium_missing())
    session.log(f"{venvs.INSTALL_BROWSER_VAR}=1: installing Debian's chromium for the browser test")
    for command in commands:
        session.run(*command, external=True, env={"DEBIAN_FRONTEND": "noninteractive"})


@nox.session(python=pins.TESTS_PYTHON, venv_backend="uv")
def lint(session):
    """ruff and zizmor (pinned in picklematrix.pins.LINT), and actionlint: ruff over the code, actionlint and zizmor
    over .github (picklematrix.workflow_lint; zizmor's online audits only with GH_TOKEN set)."""
    _args(session)
    session.install(*pins.LINT)
    session.run("ruff", "check", "src", "tests", "benchmarks", "bench", "noxfile.py", "hatch_build.py")
    session.run("python", "-m", "picklematrix.workflow_lint", env={"PYTHONPATH": str(ROOT / "src")})


@nox.session(python=False)
def report(session):
    """asv's HTML site working offline, the matrix page, results/table.md and results/table.json
    (``picklematrix report``, in the asv tools venv)."""
    args = _args(session)
    args.results = args.results or str(ROOT / "results")
    if args.html is None:
        from picklematrix.record.asvconf import default_html_dir

        args.html = str(default_html_dir(ROOT, Path(args.results)))
    _in_tools_venv(session, "report", args)


@nox.session(python=False)
def preview(session):
    """The report's site served on 127.0.0.1 until Ctrl-C, its matrix page's URL printed (``picklematrix
    preview``: ``-- --port N``, ``--browser``). Standard library only: it runs in nox's own Python."""
    args = _args(session)
    args.results = args.results or str(ROOT / "results")
    if args.html is None:
        from picklematrix.record.asvconf import default_html_dir

        args.html = str(default_html_dir(ROOT, Path(args.results)))
    _status(session, "preview", cli.run_command(args))


@nox.session(python=False)
def review(session):
    """An upgrade review (``picklematrix review``, in the asv tools venv); envs it names on demand (a spec, a
    requirements file, ``--change``, ``--scheduler``) are resolved and recorded first, as ``matrix`` records them."""
    from picklematrix.record.sessions import BAD_ENV, review_envs, with_ids

    args = _args(session)
    args.results = args.results or str(ROOT / "results")
    try:
        with _failing(session):
            ids = review_envs(args, ROOT, log=session.log, warn=session.warn)
    except BAD_ENV as e:
        session.log(f"picklematrix review: cannot resolve the env asked for:\n{e}")
        raise SystemExit(2) from None
    _in_tools_venv(session, "review", with_ids(args, ids))


@nox.session(python=False, name="bisect")
def bisect_(session):
    """The first release between two whose outcomes differ (``picklematrix bisect``): ``-- --change
    NAME=A..B --only GLOB``; writes results/bisect/<name>-<A>..<B>.md and .json."""
    args = _args(session)
    args.results = args.results or str(ROOT / "results")
    _status(session, "bisect", cli.run_command(args))


@nox.session(python=False)
def plan(session):
    """The profile's envs as a CI job matrix (JSON on stdout): ``-- [--json PATH] [--profile NAME]``."""
    _status(session, "plan", cli.run_command(_args(session)))


@nox.session(python=False)
def merge(session):
    """Merge shards' results directories: ``-- DIR [DIR ...]`` into --results (default results/)."""
    args = _args(session)
    args.results = args.results or str(ROOT / "results")
    _status(session, "merge", cli.run_command(args))


@nox.session(python=False)
def comment(session):
    """A pull request's review as one comment, posted or updated (``picklematrix comment``). Needs GITHUB_TOKEN
    (never printed). Standard library and packaging only: it runs in nox's own Python."""
    _status(session, "comment", cli.run_command(_args(session)))


@nox.session(python=False)
def alert(session):
    """The daily run's one issue, opened, updated or closed (``picklematrix alert``): ``-- DIR --expect N``, DIR
    holding each job's ``review --newest --json``. Needs GITHUB_TOKEN (never printed); standard library only."""
    _status(session, "alert", cli.run_command(_args(session)))


def _in_tools_venv(session, command, args):
    """``python -m picklematrix COMMAND`` in the asv tools venv (asv, jinja2), with the arguments as parsed."""
    from picklematrix.envs.venvs import tools_python

    with _failing(session):
        tools = tools_python(ROOT)
    code = subprocess.run([tools, "-m", "picklematrix", command, *cli.to_argv(command, args)], cwd=ROOT,
                          check=False).returncode
    _status(session, command, code)


def _status(session, command, code):
    # nox reports every failed session as exit 1; the report, the review, the bisect and the comment give 1 and 2
    # distinct meanings, so their status is passed through as nox's own.
    if code:
        session.log(f"picklematrix {command} exited with status {code}")
        raise SystemExit(code)
