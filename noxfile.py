"""picklematrix sessions. Thin: the logic lives in src/picklematrix and in the helpers below.

    nox -s matrix                      every env of the profile (PICKLEMATRIX_PROFILE, default "default")
    nox -s "matrix(cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11)"   one env;  nox -s matrix -k py3.13  a subset
    nox -s matrix -- --force           re-record envs already recorded for this commit
    nox -s tests | lint | report | review

Environment variables: PICKLEMATRIX_PROFILE (default|full|smoke|...), PICKLEMATRIX_MATRIX (another matrix
file), PICKLEMATRIX_RESULTS (results dir, default ./results), PICKLEMATRIX_MACHINE (machine name),
PICKLEMATRIX_CASES (extra case dirs, os.pathsep-separated), PICKLEMATRIX_ONLY (comma-separated case globs),
PICKLEMATRIX_DIRTY_LABEL (record from an uncommitted tree under machine "<machine>-<label>"),
PICKLEMATRIX_TOOLS_VENV (where the asv tools venv lives, default .nox/_tools),
PICKLEMATRIX_REPLICATE=N (record each env N times, copies under "<machine>-rep<i>": A/A pairs for the review).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))

from picklematrix.corpus import ABSENT  # noqa: E402
from picklematrix.matrix import VERSIONS_PROBE, MatrixError, asv_env_name, load_matrix  # noqa: E402
from picklematrix.selection import ASV_TIMED_CONTEXTS, SAMPLES, asv_patterns  # noqa: E402

# Interpreters come from pyenv's installs (.python-version lists them); never download one.
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

ASV = "asv==0.6.6"
ASV_RUNNER = "asv_runner==0.3.2"
# The tests' own env: newest dask with pydantic 2.8.2, so that the namespace
# capture of notebook models (fixed in 2.9.0) is there to be measured.
TEST_ENV = {"python": "3.11", "pins": ["dask==2026.8.0", "distributed==2026.8.0", "cloudpickle==3.1.3",
                                       "pydantic==2.8.2", "ipykernel==6.29.5", "jupyter_client==8.6.3"]}
PROFILE = os.environ.get("PICKLEMATRIX_PROFILE", "default")
MATRIX_PATH = os.environ.get("PICKLEMATRIX_MATRIX", str(ROOT / "matrix.toml"))
RESULTS = Path(os.environ.get("PICKLEMATRIX_RESULTS", ROOT / "results")).resolve()

try:
    MATRIX = load_matrix(MATRIX_PATH)
    ENVS = MATRIX.profile(PROFILE).envs
except MatrixError as e:
    # Nothing is built from a bad matrix: say which entry is wrong and stop.
    print(f"picklematrix: invalid matrix, nothing was built:\n{e}", file=sys.stderr)
    sys.exit(2)


# --------------------------------------------------------------------------- helpers


def _git(*args) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError('uv not found: install it with python3 -m pip install "nox[uv]"')
    return uv


# The commit a nox invocation records under is read once, when nox first loads
# this file. Under nox -j every session runs in a nox process of its own that
# loads this file again: the environment hands them the first reading.
RUN_COMMIT_VAR = "_PICKLEMATRIX_RUN_COMMIT"
if RUN_COMMIT_VAR not in os.environ:
    try:
        os.environ[RUN_COMMIT_VAR] = _git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        pass  # not a git checkout: recording_target says so when asked to record


def recording_target(session) -> tuple[str, str]:
    """(commit, machine) to record under.

    A dirty tree is refused unless explicitly labelled; so is a HEAD that moved
    since this nox run began (its results would describe two commits).
    """
    commit = os.environ.get(RUN_COMMIT_VAR)
    try:
        head = _git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError) as e:
        session.error(f"cannot read the harness commit (results are keyed by it): git rev-parse HEAD failed in {ROOT}: {e}")
    if commit != head:
        session.error(f"HEAD moved from {str(commit)[:8]} to {head[:8]} while this nox run was going: one run's "
                      "results must describe one commit. Run nox again to record this env under the new one.")
    machine = os.environ.get("PICKLEMATRIX_MACHINE") or socket.gethostname().split(".")[0]
    dirty = _git("status", "--porcelain")
    if dirty:
        label = os.environ.get("PICKLEMATRIX_DIRTY_LABEL")
        if not label:
            session.error(
                "refusing to record results from a tree with uncommitted changes (results are keyed by "
                f"commit {commit[:8]}, which would not describe them):\n{dirty}\n"
                "commit first, or set PICKLEMATRIX_DIRTY_LABEL=<label> to record under machine "
                f"'{machine}-<label>'"
            )
        if not re.fullmatch(r"[A-Za-z0-9_.]+", label):
            session.error(f"PICKLEMATRIX_DIRTY_LABEL={label!r}: use letters, digits, '_' and '.' only")
        machine = f"{machine}-{label}"
    return commit, machine


class _Lock:
    """An exclusive file lock: envs may run in parallel (nox -j 2), shared things are done one at a time."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def tools_python() -> str:
    """An interpreter with asv (and picklematrix, for the asv env plugin), built once and reused."""
    venv = Path(os.environ.get("PICKLEMATRIX_TOOLS_VENV", ROOT / ".nox" / "_tools"))
    with _Lock(venv.parent / f".{venv.name}.lock"):
        return _tools_python(venv)


def _tools_python(venv: Path) -> str:
    python = venv / "bin" / "python"
    wanted = "\n".join([ASV, ASV_RUNNER, "jinja2", "packaging", f"-e {ROOT}", "byte-compiled"])
    stamp = venv / "picklematrix-tools.txt"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return str(python)
    subprocess.run([_uv(), "venv", "-q", "--allow-existing", "-p", sys.executable, str(venv)], check=True)
    subprocess.run([_uv(), "pip", "install", "-q", "-p", str(python), ASV, ASV_RUNNER, "jinja2", "packaging",
                    "-e", str(ROOT)], check=True)
    problem = compile_packages(str(python))
    if problem:
        print(f"picklematrix: could not byte-compile the asv tools venv {venv} ({problem}); asv runs slower",
              file=sys.stderr)
    stamp.write_text(wanted)
    return str(python)


def asv_config(results_dir: Path) -> str:
    """asv.conf.json with absolute paths, recording into ``results_dir``; written next to that dir."""
    text = "\n".join(line for line in (ROOT / "asv.conf.json").read_text().splitlines()
                     if not line.strip().startswith("//"))
    conf = json.loads(text)
    conf.update(repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"), results_dir=str(results_dir),
                html_dir=str(RESULTS.parent / "html" if RESULTS != ROOT / "results" else ROOT / "html"),
                env_dir=str(results_dir.parent / "asv-env"))
    path = results_dir.parent / "asv.conf.json"
    path.write_text(json.dumps(conf, indent=1))
    return str(path)


def asv_home(tmp: Path) -> dict:
    """A HOME of this session's own for asv.

    Every ``asv machine`` and ``asv run`` rewrites ``~/.asv-machine.json`` in
    place: two envs recording at once (nox -j) would read each other's
    half-written file. git keeps the user's global config.
    """
    home = tmp / "asv-home"
    home.mkdir(exist_ok=True)
    env = {"HOME": str(home)}
    gitconfig = Path.home() / ".gitconfig"
    if gitconfig.exists():
        env["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    return env


def _asv_knows_machine(asv_env: dict, machine: str) -> bool:
    """``asv machine`` ran for this name in this session's asv HOME already (it costs a start of asv)."""
    try:
        known = json.loads((Path(asv_env["HOME"]) / ".asv-machine.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(known.get(machine), dict)


def merge_asv_results(stage: Path, machine: str, result_name: str) -> None:
    """Move one env's asv recording from its private results dir into RESULTS.

    asv rewrites ``benchmarks.json`` and ``<machine>/machine.json`` on every run, so
    envs running at the same time (nox -j) each record into a dir of their own;
    here, one at a time, their files join the shared one (the same corpus gives
    the same ``benchmarks.json``).
    """
    with _Lock(RESULTS / ".merge.lock"):
        (RESULTS / machine).mkdir(parents=True, exist_ok=True)
        for rel in ("benchmarks.json", f"{machine}/machine.json", f"{machine}/{result_name}"):
            tmp = RESULTS / f"{rel}.tmp-{os.getpid()}"
            shutil.copyfile(stage / rel, tmp)
            os.replace(tmp, RESULTS / rel)


def record_env_error(env, commit, machine, stage, message) -> Path:
    out = RESULTS / machine / f"{commit[:8]}-{env.env_id}.env-error"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"env": env.as_dict(), "commit": commit, "machine": machine, "stage": stage,
                               "message": message[-20000:], "recorded": time.time()}, indent=1))
    return out


# An env's packages are byte-compiled once, after installing. uv leaves that to the first import, and under
# PYTHONDONTWRITEBYTECODE=1 (common in images and CI) no import writes a .pyc: every process of a run (the
# harness, its forkserver, each kernel, asv's discovery and benchmark server) then compiled distributed,
# IPython, ... from source again, a fifth of a harness run's CPU. (pip, and so asv's own envs, compile at
# install.) compileall skips what is up to date: a warm env costs a tenth of a second.
COMPILE_PACKAGES = ("import compileall, sysconfig\n"
                    "compileall.compile_dir(sysconfig.get_path('purelib'), quiet=2)")


def compile_packages(python: str) -> str | None:
    """Byte-compile ``python``'s site-packages; what went wrong, if anything (the env works without it, slower).

    A file that does not compile (a template, another Python's test file) is not an error: compileall
    goes on, and the import system never meets it either.
    """
    proc = subprocess.run([python, "-c", COMPILE_PACKAGES], capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]


def _editable_stamp(python: str) -> Path:
    return Path(python).parents[1] / "picklematrix-editable.txt"


def _editable_wanted() -> str:
    import hashlib

    return f"{ROOT}\n{hashlib.sha256((ROOT / 'pyproject.toml').read_bytes()).hexdigest()}\n"


def installed_editable(python: str) -> bool:
    """The env has this checkout installed editable, from this pyproject.toml: no reinstall needed.

    uv rebuilds an editable install every time it is asked for one (a setuptools build: 2-3 s a
    session, where checking the pinned packages takes a tenth of a second). Installed from another
    checkout, or by other means, or before pyproject.toml changed: installed again.
    """
    stamp = _editable_stamp(python)
    if not stamp.exists() or stamp.read_text() != _editable_wanted():
        return False
    found = next(Path(python).parents[1].glob("lib/python*/site-packages/picklematrix-*.dist-info/direct_url.json"),
                 None)
    try:
        url = json.loads(found.read_text()) if found else {}
    except (OSError, ValueError):
        return False
    return url.get("url") == ROOT.as_uri() and bool(url.get("dir_info", {}).get("editable"))


def installed_versions(python: str) -> dict:
    return json.loads(subprocess.run([python, "-c", VERSIONS_PROBE], capture_output=True, text=True, check=True).stdout)


class SharedCluster:
    """One cluster per environment, shared by asv's benchmark processes.

    Started before the harness run (which owns a cluster of its own) so that it is up by the time
    asv needs it; ``address`` waits for it.
    """

    def __init__(self, python: str, state_file: Path):
        self.state_file = state_file
        state_file.unlink(missing_ok=True)
        # The cluster's logs go to a file: a pipe nobody reads fills up, and
        # then the scheduler and nannies block on their next log line.
        self.log = state_file.with_suffix(".log")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([python, "-m", "picklematrix", "cluster", "--state-file", str(state_file)],
                                         stdout=log, stderr=subprocess.STDOUT)
        self._address = None

    @property
    def address(self) -> str:
        if self._address is None:
            deadline = time.monotonic() + 120
            while not self.state_file.exists():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"cluster did not start: {self.log.read_text()[-3000:]}")
                time.sleep(0.05)
            self._address = json.loads(self.state_file.read_text())["address"]
        return self._address

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def matrix_impl(session, env, replica: int = 1):
    """Build one env with uv, check its versions, run the corpus, record it with asv."""
    force = "--force" in session.posargs
    started = time.perf_counter()
    commit, machine = recording_target(session)
    if replica > 1:  # PICKLEMATRIX_REPLICATE: an A/A copy, see replicate_count()
        machine = f"{machine}-rep{replica}"
    python = str(Path(session.virtualenv.location) / "bin" / "python")

    this_checkout = [] if installed_editable(python) else ["-e", str(ROOT)]
    install = subprocess.run(
        [_uv(), "pip", "install", "-p", python, *env.requirements(), *MATRIX.common_packages, *this_checkout],
        capture_output=True, text=True)
    if install.returncode == 0 and this_checkout:
        _editable_stamp(python).write_text(_editable_wanted())
    if install.returncode != 0:
        where = record_env_error(env, commit, machine, "install", install.stderr or install.stdout)
        session.error(f"{env.env_id}: cannot install {' '.join(env.requirements())}:\n"
                      f"{install.stderr.strip()[-3000:]}\n(recorded in {where})")

    problem = compile_packages(python)
    if problem:
        session.warn(f"{env.env_id}: could not byte-compile its packages ({problem}); it runs slower")
    found = installed_versions(python)
    session.log(f"{env.env_id}: python {found['python']} " +
                " ".join(f"{k}={v}" for k, v in found["versions"].items()))
    wrong = [f"{name} {found['versions'].get(name)} (pinned {version})"
             for name, version in env.pins().items() if found["versions"].get(name) != version]
    if env.pydantic == ABSENT and found["versions"].get("pydantic"):
        wrong.append(f"pydantic {found['versions']['pydantic']} (pinned: absent)")
    if not found["python"].startswith(env.python + "."):
        wrong.append(f"python {found['python']} (pinned {env.python})")
    if wrong:
        where = record_env_error(env, commit, machine, "verify", "installed versions differ: " + "; ".join(wrong))
        session.error(f"{env.env_id}: installed versions differ from the pins: {'; '.join(wrong)} ({where})")

    env_seconds = time.perf_counter() - started  # uv install (a no-op when warm) and the version check
    name = asv_env_name(found["python"], found["versions"])
    result_file = RESULTS / machine / f"{commit[:8]}-{name}.json"
    sidecar = RESULTS / machine / f"{commit[:8]}-{name}.outcomes"
    (RESULTS / machine / f"{commit[:8]}-{env.env_id}.env-error").unlink(missing_ok=True)
    if result_file.exists() and sidecar.exists() and not force:
        session.log(f"{env.env_id}: already recorded for {commit[:8]} ({result_file.name}); --force re-records")
        return

    sidecar.parent.mkdir(parents=True, exist_ok=True)
    only = [g for g in os.environ.get("PICKLEMATRIX_ONLY", "").split(",") if g]
    cases = [d for d in os.environ.get("PICKLEMATRIX_CASES", "").split(os.pathsep) if d]
    # The harness run starts and owns its cluster: it may replace workers or
    # the whole cluster after a hung or killed cell. asv's benchmark processes
    # (which only time cells that passed) then share one cluster of this env.
    # Three timing samples per passing cell: asv takes them for the contexts it times, the harness for the rest.
    run_args = ["run", "--context", "all", "--samples", str(SAMPLES),
                *(f"--samples={context}=1" for context in ASV_TIMED_CONTEXTS), "--json", str(sidecar),
                "--env-id", env.env_id, "--commit", commit, "--machine", machine]
    for d in cases:
        run_args += ["--cases", d]
    for g in only:
        run_args += ["--only", g]
    tmp = Path(session.create_tmp()).resolve()
    stage = tmp / "asv-results"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    # asv's cluster starts now, while the harness runs: it is up when asv needs it
    cluster = SharedCluster(python, tmp / "cluster.json")
    try:
        # exit 1 (surprises) is a finding, recorded like any other result; 2 is bad input
        harness_started = time.perf_counter()
        session.run(python, "-m", "picklematrix", *run_args, external=True, success_codes=[0, 1])
        harness_seconds = time.perf_counter() - harness_started
        asv_started = time.perf_counter()
        tools = tools_python()
        config = asv_config(stage)
        asv_env = asv_home(tmp)
        if not _asv_knows_machine(asv_env, machine):
            session.run(tools, "-m", "asv", "machine", "--yes", "--machine", machine, "--config", config,
                        external=True, silent=True, env=asv_env)
        # Only the cells each benchmark can measure (see picklematrix.selection): asv records the rest
        # as n/a without starting a process for each, as their setup would have said.
        patterns = asv_patterns(json.loads(sidecar.read_text())["cells"])
        command = [tools, "-m", "asv", "run", "--config", config, "--environment", f"picklematrix:{python}",
                   "--set-commit-hash", commit, "--machine", machine, "--launch-method", "forkserver",
                   "--show-stderr"]
        session.log(" ".join(command) + f" -b ... ({len(patterns)} cell selections)")
        code = subprocess.run(command + [arg for p in patterns for arg in ("-b", p)],
                              env={**os.environ, **asv_env, "PICKLEMATRIX_SIDECAR": str(sidecar),
                                   "PICKLEMATRIX_SCHEDULER": cluster.address}).returncode
    finally:
        cluster.stop()
    if not (stage / machine / result_file.name).exists():
        session.error(f"asv wrote no {result_file.name} (in {stage / machine}): see its output above")
    # asv exits non-zero when a benchmark failed; the others' results are kept all the same
    merge_asv_results(stage, machine, result_file.name)
    if code:
        session.error(f"{env.env_id}: asv run exited with status {code} (a benchmark failed: see its output "
                      f"above); what it did record is in {result_file.relative_to(RESULTS)}")
    session.log(f"{env.env_id}: recorded {result_file.relative_to(RESULTS)} and {sidecar.name} in "
                f"{time.perf_counter() - started:.1f} s (env {env_seconds:.1f} s, harness {harness_seconds:.1f} s, "
                f"asv {time.perf_counter() - asv_started:.1f} s)")


def replicate_count(session) -> int:
    """PICKLEMATRIX_REPLICATE=N records each env N times; copies 2..N go under machine "<machine>-rep<i>".

    The copies are A/A pairs of the first recording (fresh harness run, fresh cluster, fresh asv run):
    `nox -s review` counts the changes an A/A pair shows to tell noise from a real difference.
    """
    text = os.environ.get("PICKLEMATRIX_REPLICATE", "1")
    if not text.isdigit() or int(text) < 1:
        session.error(f"PICKLEMATRIX_REPLICATE={text!r}: use a whole number >= 1 (2 records an A/A pair)")
    return int(text)


def ensure_chromium(session):
    """The browser test needs Debian's chromium; install it where we may (root with apt), else say so."""
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        session.log("installing Debian's chromium for the browser test")
        session.run("apt-get", "update", "-qq", external=True, silent=True)
        session.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", external=True,
                    silent=True, env={"DEBIAN_FRONTEND": "noninteractive"})
    else:
        session.warn("chromium is not installed and cannot be installed here: the browser test will fail")


# --------------------------------------------------------------------------- sessions


@nox.session(venv_backend="uv", allow_parallel=True)
@nox.parametrize(("python", "env_id"), [nox.param(e.python, e.env_id, id=e.env_id) for e in ENVS])
def matrix(session, env_id):
    """One matrix environment: build, verify, run the corpus, record with asv."""
    matrix_impl(session, MATRIX.env(env_id))
    for replica in range(2, replicate_count(session) + 1):
        matrix_impl(session, MATRIX.env(env_id), replica=replica)


@nox.session(python=TEST_ENV["python"], venv_backend="uv")
def tests(session):
    """The test suite (real clusters, real envs, a real browser; the slow end-to-end tests included)."""
    ensure_chromium(session)
    session.install(*TEST_ENV["pins"], "pytest", "jinja2", ASV, ASV_RUNNER, "nox[uv]", "websocket-client==1.9.0",
                    "-e", ".")
    session.run("python", "-c", COMPILE_PACKAGES, silent=True)
    session.run("python", "-m", "pytest", "-v", "--durations=15", *session.posargs)


@nox.session(python=TEST_ENV["python"], venv_backend="uv")
def lint(session):
    session.install("ruff==0.8.6")
    session.run("ruff", "check", "src", "tests", "benchmarks", "bench", "noxfile.py")


# --------------------------------------------------------------------------- report and review


@nox.session(python=False)
def report(session):
    """asv's HTML site working offline, the outcome matrix page, results/matrix.md and results/matrix.json.

    nox -s report [-- --commit REV --html DIR --strict]; browse with any static server, e.g.
    python3 -m http.server --bind 127.0.0.1 --directory html 8080
    """
    _run_tools_module(session, "picklematrix.report", "--results", str(RESULTS),
                      "--html", str(RESULTS.parent / "html" if RESULTS != ROOT / "results" else ROOT / "html"))


@nox.session(python=False)
def review(session):
    """An upgrade review: nox -s review -- --from ENV --to ENV (or --change pydantic=2.8.2..2.9.2).

    Exits with the review's own status: 0 nothing broke, 1 something broke or got slower, 2 bad input.
    """
    _run_tools_module(session, "picklematrix.review", "--results", str(RESULTS))


def _run_tools_module(session, module, *args):
    # nox reports every failed session as exit 1; the report and the review give 1 and 2 distinct meanings,
    # so their status is passed through as nox's own.
    code = subprocess.run([tools_python(), "-m", module, *args, *session.posargs], cwd=ROOT, check=False).returncode
    if code:
        session.log(f"{module} exited with status {code}")
        raise SystemExit(code)
