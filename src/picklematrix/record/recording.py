"""Recording one matrix env: which commit and machine, the harness run, asv's record of it, the merge.

``nox -s matrix`` calls :func:`record_env` once per env (and replica). Each env records into a private
directory and its files join ``results/`` under a lock, so envs may record side by side (nox -j).
A failure raises :class:`RecordingError` with a message that names the env and what to do; an env
that cannot be built also leaves a ``<commit>-<env id>.env-error`` file in the results.

A record (the asv result and its outcome sidecar) is replaced only by a complete one. While an env records,
``<sidecar>.partial`` marks it in ``results/`` (the report names one left behind); the harness writes into
the session's own directory, and the new sidecar and asv result join ``results/`` together at the end. An
env whose record is incomplete (a leftover ``.partial``, a sidecar with ``complete: false``, no asv result)
is not "already recorded": the next run records it again, from the start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from filelock import Timeout

from picklematrix import sidecar as sidecars
from picklematrix.cluster.limits import clusters_at_once
from picklematrix.envs import skew, venvs
from picklematrix.envs.ids import CORPUS_VAR, asv_env_name, corpus_versions
from picklematrix.record import asvconf, fingerprint, logs
from picklematrix.record.clusters import ClusterSource, probe
from picklematrix.record.resultsdir import (
    RecordingError,
    Target,
    check_results_writable,
    merge_asv_results,
    record_env_error,
    recorded,
    writing_results,
)

# the short TMPDIR of the harness and asv (Unix socket paths), also recording.short_tmpdir etc. as before
from picklematrix.record.tmpdirs import (  # noqa: F401
    SHORT_TMP_BASES,
    SHORT_TMP_MAX,
    process_env,
    short_tmp_base,
    short_tmpdir,
)
from picklematrix.run import progress
from picklematrix.run.corpus import CONTEXTS, case_digest
from picklematrix.run.selection import recording_samples_args

# The commit a run records under (the fingerprint commit, see picklematrix.record.fingerprint) is read once per
# run: by its first recording, when nox's sessions share a directory (RUN_DIR_VAR, set when nox loads the
# noxfile: under nox -j every session runs in a nox process of its own), else when the process sets it
# (RUN_COMMIT_VAR, remember_run_commit).
RUN_COMMIT_VAR = "_PICKLEMATRIX_RUN_COMMIT"
RUN_DIR_VAR = "_PICKLEMATRIX_RUN_DIR"


def git(checkout: Path, *args) -> str:
    return subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True, check=True).stdout.strip()


def remember_run_commit(checkout: Path) -> None:
    """Note the checkout's fingerprint commit as this nox run's, unless a parent nox process did already."""
    if RUN_COMMIT_VAR not in os.environ:
        with contextlib.suppress(fingerprint.FingerprintError):
            os.environ[RUN_COMMIT_VAR] = fingerprint.fingerprint_commit(checkout)
            # (not a git checkout: recording_target says so when asked to record)


def run_commit(checkout: Path) -> str | None:
    """This run's fingerprint commit: RUN_COMMIT_VAR's, else the first reading of this nox run's sessions
    (RUN_DIR_VAR; one file per checkout, taken in turns), else the checkout's now. None outside git."""
    if RUN_COMMIT_VAR in os.environ:
        return os.environ[RUN_COMMIT_VAR]
    shared = os.environ.get(RUN_DIR_VAR)
    try:
        if not shared:
            return fingerprint.fingerprint_commit(checkout)
        from filelock import FileLock

        where = Path(shared)
        where.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(str(Path(checkout).resolve()).encode()).hexdigest()[:16]
        with FileLock(where / f"{key}.lock"):
            path = where / f"{key}.commit"
            if not path.exists():
                path.write_text(fingerprint.fingerprint_commit(checkout))
            return path.read_text().strip()
    except fingerprint.FingerprintError:
        return None  # (not a git checkout: recording_target says so when asked to record)


def recording_target(checkout: Path) -> tuple[str, str]:
    """(commit, machine) to record under; the commit is the fingerprint commit (picklematrix.record.fingerprint).

    Uncommitted changes to fingerprinted paths are refused unless explicitly labelled (PICKLEMATRIX_DIRTY_LABEL);
    so is a fingerprint that moved since this nox run began (its results would describe two states of the code).
    Changes to docs, the report or matrix.toml, committed or not, are neither.
    """
    commit = run_commit(checkout)
    try:
        current = fingerprint.fingerprint_commit(checkout)
    except fingerprint.FingerprintError as e:
        raise RecordingError(str(e)) from None
    if commit != current:
        raise RecordingError(f"HEAD moved from {str(commit)[:8]} to {current[:8]} in the code recordings depend on "
                             "(picklematrix.record.fingerprint) while this run was going: one run's results must "
                             "describe one state of it. Run nox again to record this env under the new one.")
    machine = os.environ.get("PICKLEMATRIX_MACHINE") or socket.gethostname().split(".")[0]
    dirty = fingerprint.dirty_paths(checkout)
    if dirty:
        label = os.environ.get("PICKLEMATRIX_DIRTY_LABEL")
        if not label:
            raise RecordingError(
                "refusing to record results from a tree with uncommitted changes to code the results depend on "
                f"(they are keyed by commit {commit[:8]}, which would not describe them):\n{dirty}\n"
                "commit first, or set PICKLEMATRIX_DIRTY_LABEL=<label> to record under machine "
                f"'{machine}-<label>'")
        if not re.fullmatch(r"[A-Za-z0-9_.]+", label):
            raise RecordingError(f"PICKLEMATRIX_DIRTY_LABEL={label!r}: use letters, digits, '_' and '.' only")
        machine = f"{machine}-{label}"
    return commit, machine


def replicate_count() -> int:
    """PICKLEMATRIX_REPLICATE=N records each env N times; copies 2..N go under machine "<machine>-rep<i>".

    The copies are A/A pairs of the first recording (fresh harness run, fresh cluster, fresh asv run):
    `nox -s review` counts the changes an A/A pair shows to tell noise from a real difference.
    """
    text = os.environ.get("PICKLEMATRIX_REPLICATE", "1")
    if not text.isdigit() or int(text) < 1:
        raise RecordingError(f"PICKLEMATRIX_REPLICATE={text!r}: use a whole number >= 1 (2 records an A/A pair)")
    return int(text)


def broken_cases_text(broken: list) -> str:
    return "; ".join(f"{b.get('path')}:{b.get('line')}: {b.get('message')}" for b in broken)


def asv_home(tmp: Path) -> dict:
    """A HOME of this session's own for asv.

    Every ``asv machine`` and ``asv run`` rewrites ``~/.asv-machine.json`` in place: two envs recording
    at once (nox -j) would read each other's half-written file. It is made empty for each recording: a run
    stopped while asv wrote it leaves it half-written, and asv would refuse to read it ("Error parsing JSON")
    on every later run (a recording names its machine again each time). git keeps the user's global config.
    """
    home = tmp / "asv-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    env = {"HOME": str(home)}
    gitconfig = Path.home() / ".gitconfig"
    if gitconfig.exists():
        env["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    return env


def _keep_progress(staged: Path, marker: Path) -> None:
    """After a failed harness run: its progress (the cells it did) replaces the head-only marker, so the
    report can say how far it got. Best effort: the marker alone already says the recording was interrupted."""
    progress = sidecars.partial_path(staged)
    with contextlib.suppress(OSError):
        if progress.exists():
            shutil.copyfile(progress, marker)


def harness_command(python: str, env_id: str, sidecar: Path, commit: str, machine: str) -> list[str]:
    """``python -m picklematrix run`` as nox -s matrix runs it, with PICKLEMATRIX_CASES and _ONLY applied.

    Timing samples per passing cell as ``selection.recording_samples`` says: asv's ``SAMPLES`` in the contexts
    it times (picklematrix.record.asv_record), one elsewhere; the sidecar keeps them all. PICKLEMATRIX_CASES
    (os.pathsep-separated dirs) replaces the built-in corpus.
    """
    args = [python, "-m", "picklematrix", "run", "--context", "all", *recording_samples_args(CONTEXTS),
            "--json", str(sidecar), "--env-id", env_id, "--commit", commit, "--machine", machine]
    for d in (d for d in os.environ.get("PICKLEMATRIX_CASES", "").split(os.pathsep) if d):
        args += ["--cases", d]
    for g in (g for g in os.environ.get("PICKLEMATRIX_ONLY", "").split(",") if g):
        args += ["--only", g]
    return args


def run_harness(command: list[str], env: dict, env_id: str, console: logs.EnvConsole, log_file: Path,
                sidecar: Path | None = None) -> list:
    """The harness run, its output into ``log_file`` and its progress on ``console``; the broken case files it
    skipped (their problems, from ``sidecar``).

    Exit 1 (surprises) is a finding, recorded like any other result. Exit 2 after a complete run with broken
    case files is recorded too (the other cases ran): the caller records it and then fails naming them.
    """
    code = logs.run_logged(command, env, log_file, on_line=console.harness_line)
    if code in (0, 1):
        return []
    done = None
    if code == 2 and sidecar is not None:
        with contextlib.suppress(sidecars.SidecarError):
            done = sidecars.read(sidecar)
    if done is not None and done.complete and done.head.get("broken_cases"):
        return list(done.head["broken_cases"])
    raise RecordingError(logs.failure(f"{env_id}: the harness exited with exit code {code} (2: bad input)",
                                      log_file, skip=progress.parse))


def run_asv(tools: str, python: str, config: Path, target: Target, sidecar: Path, asv_env: dict,
            log_file: Path, cluster: ClusterSource | None = None) -> int:
    """asv's record of the cells of ``sidecar`` in ``python``'s env (picklematrix.record.asv_record, in the tools
    venv ``tools``); its exit code. ``asv_env``: the environment (HOME, TMPDIR) asv runs in; its output goes to
    ``log_file``. asv starts no benchmark process and needs no cluster: the values are the harness run's.
    """
    request = Path(config).with_name("asv-record.json")
    request.write_text(json.dumps({"config": str(config), "python": python, "sidecar": str(sidecar),
                                   "commit": target.commit, "machine": target.machine}, indent=1))
    # PICKLEMATRIX_SIDECAR: the benchmarks' module imports as asv's own runs see it (no setup_cache), so that
    # the code versions asv discovers are the same
    env = {**asv_env, "PICKLEMATRIX_SIDECAR": str(sidecar), **(cluster.asv_environ() if cluster else {})}
    return logs.run_logged([tools, "-m", "picklematrix.record.asv_record", str(request)], env, log_file)


def run_slots() -> int:
    """How many envs of one nox run compute at once: ``limits.clusters_at_once()`` (PICKLEMATRIX_CLUSTERS, the
    clusters at once that workers' memory limits are sized for, else one per CPU). Raises RecordingError for a
    value that is no number."""
    try:
        return clusters_at_once()
    except ValueError as e:
        raise RecordingError(str(e)) from None


@contextlib.contextmanager
def run_slot(console: logs.EnvConsole, poll: float = 0.25):
    """One of the nox run's :func:`run_slots` while this env runs its cells and asv records them.

    nox starts more sessions than that (the noxfile), so that an env's build, mostly downloads and unpacking
    when uv's cache is cold, overlaps the runs of others; the cells, which share the CPU, wait for a slot. The
    slots are locks in the nox run's directory (RUN_DIR_VAR), the kernel's (flock): a killed session frees its
    own. Outside a nox run (``picklematrix matrix``, one env after another) there is nothing to wait for.
    """
    shared = os.environ.get(RUN_DIR_VAR)
    if not shared:
        yield 0.0
        return
    locks = [venvs.lock(Path(shared) / "run-slots" / f"{i}.lock") for i in range(run_slots())]
    started = time.perf_counter()
    held = None
    while held is None:
        for lock in locks:
            with contextlib.suppress(Timeout):
                lock.acquire(blocking=False)
                held = lock
                break
        else:
            if time.perf_counter() - started < poll:
                console.phase(f"built; waiting for one of {len(locks)} run slots (other envs compute)")
            time.sleep(poll)
    try:
        yield time.perf_counter() - started
    finally:
        held.release()


# How long a recording waits for an earlier one in the same session directory to end.
EARLIER_RECORDING_WAIT = 600.0


@contextlib.contextmanager
def one_recording_at_a_time(session_tmp: Path, console: logs.EnvConsole, wait: float | None = None):
    """Hold the session directory's lock while recording: a run started while an interrupted one is still ending
    (its harness, asv's record) waits for it to end instead of sharing its venv and staging directories. The
    lock is the kernel's (flock): a killed recording holds it no longer than its processes live.
    """
    wait = EARLIER_RECORDING_WAIT if wait is None else wait
    lock = venvs.lock(session_tmp / "recording.lock")
    holder = session_tmp / "recording.pid"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        who = holder.read_text().strip() if holder.exists() else "?"
        console.phase(f"waiting for an earlier recording in {session_tmp} (pid {who}) to end")
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise RecordingError(f"an earlier recording (pid {who}) still holds {session_tmp} after {wait:.0f} s: "
                                 f"let it finish, or end it (kill {who}) and run again") from None
    try:
        holder.write_text(f"{os.getpid()}\n")
        yield
    finally:
        lock.release()


def record_env(env, python: str, checkout: Path, results: Path, session_tmp: Path, *, replica: int = 1,
               force: bool = False, log=print, warn=print, cluster: ClusterSource | None = None) -> str:
    """Build ``env`` in the venv of ``python``, check its versions, run the corpus, record it with asv.

    ``session_tmp`` keeps what outlives one recording (asv's HOME, its private results dir). ``cluster``:
    compute on another env's cluster, or one at an address (picklematrix.envs.skew), instead of one of ``env``'s;
    its identity joins the record's (env id ``<env id>~<cluster env id>``), which is returned.
    Raises :class:`RecordingError`; an env that cannot be built is also recorded as an ``.env-error``.
    The console gets a line per phase; the output of each step goes to the env's log files (picklematrix.record.logs).
    """
    label = skew.record_env_id(env.env_id, cluster.identity if cluster else None) + _copy_label(replica)
    with logs.EnvConsole(label, log) as console, one_recording_at_a_time(session_tmp, console):
        return _record_env(env, python, checkout, results, session_tmp, replica=replica, force=force, log=log,
                           warn=warn, cluster=cluster, console=console)


def _copy_label(replica: int) -> str:
    """How the console tells an A/A copy's lines from its env's, which record at the same time."""
    return f" (copy {replica})" if replica > 1 else ""


def _record_env(env, python, checkout, results, session_tmp, *, replica, force, log, warn, cluster, console):
    started = time.perf_counter()
    env_id = skew.record_env_id(env.env_id, cluster.identity if cluster else None)
    commit, machine = recording_target(checkout)
    if replica > 1:  # an A/A copy (a profile's aa_pair, PICKLEMATRIX_REPLICATE): see replicate_count()
        machine = f"{machine}-rep{replica}"
    target = Target(results, commit, machine)
    check_results_writable(target)
    env_log = [logs.started_line(), f"env {env_id}: {' '.join(env.requirements())} into {python}\n"]
    if getattr(env, "source", None) is not None:  # read from a requirements file: what it does not install
        env_log += [f"skipped {s}\n" for s in env.skipped] + [f"{note}\n" for note in env.source.notes]
    console.phase("build")
    try:
        found = venvs.prepare(env, python, checkout, warn=lambda m: (warn(m), env_log.append(m + "\n")),
                              on_line=console.build_line)
    except venvs.EnvError as e:
        where = record_env_error(target, env, e.stage, str(e), env_id=env_id)
        console.logs = logs.log_dir(results, machine, commit, env_id)
        with contextlib.suppress(OSError):
            console.logs.mkdir(parents=True, exist_ok=True)
            (console.logs / "env.log").write_text("".join(env_log) + f"{e.stage} failed:\n{e}\n")
        # the whole message: a resolver's explanation ("because ...") follows its first line
        raise RecordingError(f"{str(e).strip()[-20000:]}\n(recorded in {where})") from None
    if cluster is not None and cluster.identity is None:  # a cluster at an address: ask it what it runs
        cluster = probe(cluster, python, log)
        env_id = skew.record_env_id(env.env_id, cluster.identity)
    console.env_id = env_id + _copy_label(replica)
    env_log.append(f"verify ok: python {found['python']} "
                   + " ".join(f"{k}={v}" for k, v in found["versions"].items()) + "\n")
    console.phase(env_log[-1].strip())
    env_seconds = time.perf_counter() - started  # uv install (a no-op when warm) and the version check

    # the corpus is part of the record's identity: a user's case folders (their digest) never replace the
    # built-in corpus's record of this env, nor the other way round (picklematrix.envs.ids.corpus_versions)
    corpus = case_digest(fingerprint.case_dirs_asked())
    name = skew.record_name(asv_env_name(found["python"], corpus_versions(found["versions"], corpus)),
                            cluster.identity if cluster else None)
    result_file, final_sidecar = target.path(name, ".json"), target.path(name, sidecars.SUFFIX)
    marker = sidecars.partial_path(final_sidecar)
    error_file = target.path(env_id, ".env-error")
    with writing_results(error_file, results):
        error_file.unlink(missing_ok=True)
    done = recorded(result_file, final_sidecar)
    if done is not None and not force:
        log(f"{env_id}: already recorded for {commit[:8]} ({result_file.name}); --force re-records")
        if done.head.get("broken_cases"):
            warn(f"{env_id}: its record skipped broken case file(s): {broken_cases_text(done.head['broken_cases'])}")
        return env_id
    if done is None and not result_file.exists():
        same_commit = target.path("", "")  # results/<machine>/<commit[:8]>-: this fingerprint's records
        for why in fingerprint.edited_folders(same_commit.parent, same_commit.name, env_id):
            log(f"{env_id}: {why}: recording the folders as they are now")
    if marker.exists():
        log(f"{env_id}: {marker} is left from an interrupted recording: recording again, from the start "
            "(a complete record already there stays until the new one is complete)")
    elif result_file.exists() or final_sidecar.exists():
        log(f"{env_id}: " + ("re-recording (--force)" if done is not None else
                             fingerprint.stale_reason(result_file, final_sidecar))
            + "; the old record stays until the new one is complete")
    console.logs = logs.log_dir(results, machine, commit, env_id)
    with writing_results(console.logs, results):
        console.logs.mkdir(parents=True, exist_ok=True)
        (console.logs / "env.log").write_text("".join(env_log))
    # The marker: what the report names if this recording never completes. The harness writes its sidecar
    # into this session's directory; the record joins results/ only when complete (merge_asv_results).
    with writing_results(marker, results):
        sidecars.SidecarWriter(final_sidecar, {"env_id": env_id, "commit": commit, "machine": machine,
                                               "recording_started": time.time()}).start()
    stage = session_tmp / "asv-results"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    sidecar = session_tmp / "record" / final_sidecar.name
    shutil.rmtree(sidecar.parent, ignore_errors=True)
    sidecar.parent.mkdir(parents=True)
    config = asvconf.write_config(session_tmp / asvconf.CONFIG_NAME, checkout=checkout, results_dir=stage,
                                  html_dir=asvconf.default_html_dir(checkout, results),
                                  env_dir=session_tmp / "asv-env")
    # asv's venv, built (once, shared) before this env waits for a run slot: on a cold cache, downloads
    tools = venvs.tools_python(checkout)
    with short_tmpdir() as tmpdir, run_slot(console) as waited:
        run_env = process_env(python, tmpdir)
        # The harness run starts and owns its cluster: it may replace workers or the whole cluster after
        # a hung or killed cell. It takes every timing sample; asv records them (no cluster of its own).
        harness_started = time.perf_counter()
        try:
            command = harness_command(python, env_id, sidecar, commit, machine)
            command += cluster.harness_args() if cluster else []
            console.phase("cluster")
            broken = run_harness(command, run_env, env_id, console, console.logs / "harness.log", sidecar)
        except RecordingError:
            _keep_progress(sidecar, marker)
            raise
        harness_seconds = time.perf_counter() - harness_started
        if getattr(env, "source", None) is not None:
            # the record keeps the requirements file's lines the env does not install (an approximate env)
            with writing_results(sidecar, results):
                sidecars.add_head(sidecar, requirements=env.source.as_dict())
        asv_started = time.perf_counter()
        asv_env = {**os.environ, "TMPDIR": tmpdir, **asv_home(session_tmp), CORPUS_VAR: corpus or ""}
        console.phase("asv")
        code = run_asv(tools, python, config, target, sidecar, asv_env, console.logs / "asv.log", cluster)
    if code or not (stage / machine / result_file.name).exists():
        raise RecordingError(logs.failure(f"{env_id}: asv wrote no {result_file.name} (in {stage / machine}; "
                                          f"exit status {code})", console.logs / "asv.log"))
    console.phase("merge")
    merge_asv_results(stage, results, machine, result_file.name, sidecar=sidecar)
    if broken:
        # recorded (the other cases ran, asv recorded them), and still a failure: the corpus has an error to fix
        raise RecordingError(f"{env_id}: recorded {result_file.relative_to(results)} without "
                             f"{len(broken)} broken case file(s), skipped: {broken_cases_text(broken)}. Fix them "
                             "(`picklematrix cases --check`) and re-record with `nox -s matrix -- --force`")
    asv_seconds = time.perf_counter() - asv_started
    slot = f", waited {waited:.1f} s for a run slot" if waited >= 0.1 else ""
    log(f"{env_id}: recorded {result_file.relative_to(results)} and {sidecar.name} in "
        f"{time.perf_counter() - started:.1f} s (env {env_seconds:.1f} s, harness {harness_seconds:.1f} s, "
        f"asv {asv_seconds:.1f} s{slot}); logs in {console.logs}")
    return env_id
