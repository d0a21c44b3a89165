"""picklematrix sessions, thin: building envs is picklematrix.envs.venvs, recording them picklematrix.record.recording,
every pin picklematrix.pins, asv's configuration picklematrix.record.asvconf.

    ./nox -s matrix                    every env of the profile (PICKLEMATRIX_PROFILE, default "default")
    ./nox -s "matrix(cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11)"   one env;  ./nox -s matrix -k py3.13  a subset
    ./nox -s matrix -- --force         re-record envs already recorded for this fingerprint
    ./nox -s tests                     the test suite (what CI runs: .ci/run); -- <pytest args>
    ./nox -s lint                      ruff over src, tests, benchmarks, bench and this file
    ./nox -s report | review           the HTML site and matrix files; an upgrade review
    ./nox -s matrix -- --env "python=3.11 dask=2024.6.2 pydantic=~=2.10" | --env requirements.txt |
                       --change pydantic=2.10.6 [--base ENV] [--as-of DATE]    envs on demand (picklematrix.envs.spec)
    ./nox -s review -- --from requirements-a.txt --to requirements-b.txt | --change pydantic=2.10.6
                                       review envs on demand, recording the missing ones first
    ./nox -s bisect -- --package pydantic --from 2.8.2 --to 2.9.2 [--env BASE] [--case GLOB] [--cases DIR] [--pre]
                                       the first release whose outcomes differ (picklematrix.record.bisect)

Results are keyed by the last commit touching the code they depend on (picklematrix.record.fingerprint), not HEAD:
a commit of docs, report code or matrix.toml reuses every result.

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
    from picklematrix.envs import skew, venvs
    from picklematrix.envs import spec as envspec
    from picklematrix.envs.matrix import MatrixError, load_matrix
    from picklematrix.record import asvconf, bisect, noxargs, ondemand, recording, shards, skew_envs
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

# Envs on demand: `nox -s matrix -- --env SPEC [--env SPEC ...] [--change SPEC] [--base ENV] [--as-of DATE]`
# records these envs instead of the profile's (picklematrix.record.noxargs resolves them, once per nox run).
_option = noxargs.option


# The envs' progress lines (picklematrix.record.logs): nox -j prints a session's output only when the session ends, so
# when the console is not a terminal this (nox's own) process prints them as they come. Full logs: results/logs/.
from picklematrix.record import logs  # noqa: E402

logs.setup_console(relay=noxargs.matrix_selected(sys.argv) or any(a in ("review", "bisect") for a in sys.argv))


# The profile's client/cluster skew pairs (matrix.toml [skew.NAME]) are matrix sessions too: skew-<name>.
SKEW = MATRIX.profile(PROFILE).skew
if noxargs.matrix_selected(sys.argv):
    try:
        ON_DEMAND = noxargs.on_demand(noxargs.posargs(sys.argv), MATRIX, PROFILE)
    except noxargs.ArgsError as e:
        print(e, file=sys.stderr)
        sys.exit(e.status)
    if ON_DEMAND:
        ENVS = [e for e in ON_DEMAND if not isinstance(e, skew.SkewPair)]
        SKEW = [e for e in ON_DEMAND if isinstance(e, skew.SkewPair)]
MATRIX_ENVS = {ondemand.env_key(e): e for e in ENVS}
MATRIX_ENVS.update({pair.session_id: pair for pair in SKEW})


def _client(target):
    """The env a matrix session's venv is: the env itself, or a skew pair's client env."""
    return target.client if isinstance(target, skew.SkewPair) else target


@contextmanager
def _failing(session):
    """The package's errors end the session with their message."""
    try:
        yield
    except (recording.RecordingError, venvs.EnvError) as e:
        session.error(str(e))


@nox.session(venv_backend="uv", allow_parallel=True)
@nox.parametrize(("python", "env_id"), [nox.param(_client(e).python, key, id=key) for key, e in MATRIX_ENVS.items()])
def matrix(session, env_id):
    """One matrix environment: build, verify, run the corpus, record with asv.

    ``-- --env SPEC`` (repeatable; an env id, ``python=3.11 dask=2024.6.2 pydantic=~=2.10``, or a requirements
    file), ``--change pydantic=2.10.6`` (the baseline, or ``--base ENV``, changed), ``--as-of DATE``: these
    envs instead of the profile's (picklematrix.envs.spec), recorded the same way and reused next time.
    ``skew-<name>``: a client/cluster skew pair (picklematrix.envs.skew): the corpus runs from the client env (this
    session's venv) on a cluster started from the cluster env. ``-- --scheduler ADDRESS
    [--scheduler-security FILE]``: every env runs on that cluster instead (never restarted; skew pairs skipped).
    """
    shard = _shard(session)
    if shard and env_id not in shards.shard_envs(list(MATRIX_ENVS), *shard):
        session.skip(f"not in shard {shard[0]}/{shard[1]} of profile {PROFILE!r}")
    target, scheduler = MATRIX_ENVS[env_id], _option(session.posargs, "--scheduler")
    with _failing(session):
        if isinstance(target, skew.SkewPair):
            if scheduler:
                session.skip(f"{env_id} brings its own cluster; --scheduler records the envs against {scheduler}")
            session.log(f"{env_id}: {target.label}: {target.question}")
            with logs.EnvConsole(target.env_id, session.log) as console:  # building it takes a while: say so
                console.phase(f"cluster env {target.cluster.env_id}: build")
                cluster = skew_envs.cluster_source(target, ROOT, RESULTS, warn=session.warn)
        else:
            cluster = (skew_envs.given_cluster(scheduler, _option(session.posargs, "--scheduler-security"))
                       if scheduler else None)
        for replica in range(1, recording.replicate_count() + 1):
            recording.record_env(_client(target), venvs.venv_python(session.virtualenv.location), ROOT, RESULTS,
                                 Path(session.create_tmp()).resolve(), replica=replica, cluster=cluster,
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
    # (the profile's, whatever --env says: a plan describes matrix.toml)
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
    session.run("python", "-c", venvs.COMPILE_PACKAGES, silent=True)
    session.run("python", "-m", "pytest", "-v", "--durations=15", *session.posargs)


def _browser(session):
    """Chromium for the browser test: found, installed only when asked to (PICKLEMATRIX_INSTALL_BROWSER=1)."""
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

    Envs on demand (picklematrix.envs.spec): ``--from``/``--to`` may be a spec (``"python=3.11 pydantic=~=2.10"``,
    ``pydantic=latest``) or a requirements file, ``--change pydantic=2.10.6`` (no ``..``) reviews ``--from``
    (default: the profile's baseline) against it changed so, ``--as-of DATE`` resolves as the index stood that
    day. A spec in ``--from`` changes the baseline (or ``--base ENV``), one in ``--to`` changes ``--from``.
    Envs not recorded yet are built and recorded as ``nox -s matrix`` does, then reviewed by their env ids.

    Exits with the review's own status: 0 nothing broke, 1 something broke, got slower or could not be
    compared, 2 bad input.
    """
    try:
        with _failing(session):
            args = noxargs.review_envs(list(session.posargs), MATRIX, PROFILE, ROOT, RESULTS, log=session.log,
                                       warn=session.warn)
    except noxargs.ArgsError as e:
        session.log(str(e))
        raise SystemExit(e.status) from None
    _run_tools_module(session, "picklematrix.report.reviewing", "--results", str(RESULTS), posargs=args)


@nox.session(python=False, name="bisect")
def bisect_(session):
    """The first release between two whose outcomes differ (picklematrix.record.bisect):

    nox -s bisect -- --package pydantic --from 2.8.2 --to 2.9.2 [--env BASE] [--case GLOB ...] [--cases DIR ...]
    [--pre]. Writes results/bisect/<package>-<from>..<to>.md and .json; exits 0 with an answer, 2 on bad input.
    """
    args = list(session.posargs)
    package, lo, hi = _option(args, "--package"), _option(args, "--from"), _option(args, "--to")
    if not (package and lo and hi):
        session.error("say what to bisect: --package NAME --from VERSION --to VERSION [--env BASE] [--case GLOB]")
    try:
        base_text = _option(args, "--env")
        base = MATRIX.env(MATRIX.profile(PROFILE).baseline)
        if base_text:
            base = envspec.resolve(envspec.parse(base_text, base=base), as_of=_option(args, "--as-of"),
                                   uv=venvs.uv())
        report = bisect.bisect(package, lo, hi, base, ROOT, RESULTS / "bisect", cases=_option(args, "--case", True),
                               case_dirs=_option(args, "--cases", True), pre="--pre" in args, log=session.log,
                               warn=session.warn)
    except (bisect.BisectError, envspec.SpecError, MatrixError, venvs.EnvError) as e:
        session.log(f"picklematrix bisect: {e}")
        raise SystemExit(2) from None
    print(bisect.markdown(report))
    session.log(f"bisect: written {' and '.join(report['paths'])}")



@nox.session(python=False)
def comment(session):
    """A pull request's review as one comment, posted or updated (picklematrix.report.comment):

    nox -s comment -- --review results/reviews/pr.review.json --repo OWNER/NAME --pr N [--details-url URL]
    [--dry-run] [--out PATH] [--step-summary]. Needs GITHUB_TOKEN (never printed). Standard library and
    packaging only: it runs in nox's own Python. Exits 0 posted, 1 no review to post (said so), 2 refused.
    """
    code = subprocess.run([sys.executable, "-m", "picklematrix.report.comment", *session.posargs], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=False).returncode
    if code:
        session.log(f"picklematrix.report.comment exited with status {code}")
        raise SystemExit(code)


def _run_tools_module(session, module, *args, posargs=None):
    # nox reports every failed session as exit 1; the report and the review give 1 and 2 distinct meanings,
    # so their status is passed through as nox's own.
    with _failing(session):
        tools = venvs.tools_python(ROOT)
    posargs = session.posargs if posargs is None else posargs
    code = subprocess.run([tools, "-m", module, *args, *posargs], cwd=ROOT, check=False).returncode
    if code:
        session.log(f"{module} exited with status {code}")
        raise SystemExit(code)
