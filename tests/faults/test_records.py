"""Faults of recording: a record replaced only by a complete one, a stopped recording named and redone,
a review that never says "nothing broke" over cells it could not compare.

Real processes throughout: `picklematrix run` on a real cluster stopped with SIGKILL, `nox -s matrix` stopped
the same way, the review's command line over recorded results.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from picklematrix import sidecar
from picklematrix.record import resultsdir
from picklematrix.report import compare
from picklematrix.report.results import Recording, ResultSet, load_results

from ..conftest import ROOT

ENV_NAME = "picklematrix-py3.11.7-cloudpickle3.1.3-dask2026.8.0-distributed2026.8.0-pydantic2.8.2"


def _session_members(sid: int) -> list[int]:
    """The live processes of session ``sid`` (a test's run started with start_new_session), from /proc."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL, as an OOM killer or a cancelled CI job would: every process of the run's session, no cleanup."""
    for _ in range(3):
        for pid in _session_members(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
    proc.wait(30)


def _wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended (status {proc.returncode}) before {what}:\n{out[-3000:]}\n{err[-3000:]}")
        time.sleep(0.2)
    _kill_session(proc)
    raise AssertionError(f"no {what} within {timeout:g}s")


def _cells_done(path: Path) -> int:
    try:
        return len(sidecar.read(path).cells)
    except sidecar.SidecarError:
        return 0


def _run(json_path: Path, *args, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "picklematrix", "run", "--context", "script", "--no-progress",
                             "--json", str(json_path), *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **popen)


@pytest.mark.slow
def test_a_killed_rerun_keeps_the_complete_record_and_the_report_names_the_partial(tmp_path):
    results = tmp_path / "results"
    path = results / "box" / f"0123abcd-{ENV_NAME}{sidecar.SUFFIX}"
    first = _run(path, "--only", "functions/lambda_square")
    try:
        out, err = first.communicate(timeout=300)
    finally:
        _kill_session(first)
    assert first.returncode == 0, out[-2000:] + err[-3000:]
    before = path.read_bytes()
    assert sidecar.read(path).complete

    rerun = _run(path, "--only", "functions/*")  # more cells: killed after the first of them
    try:
        _wait_for(lambda: _cells_done(sidecar.partial_path(path)) >= 1, 300, "first cell of the re-run", rerun)
    finally:
        _kill_session(rerun)
    assert path.read_bytes() == before, "a killed re-run replaced the complete record"
    partial = sidecar.read(sidecar.partial_path(path))
    assert partial.complete is False and partial.cells

    rs = load_results(results, checkout=tmp_path)
    (rec,) = rs.current()
    assert rec.complete and len(rec.cells) == 3 and rec.partial_path == sidecar.partial_path(path)
    named = [p for p in rs.problems if p.path == str(sidecar.partial_path(path))]
    assert named and "interrupted re-recording" in named[0].message and path.name in named[0].message


def test_only_a_complete_record_counts_as_recorded(tmp_path):
    result_file, path = tmp_path / "r.json", tmp_path / f"r{sidecar.SUFFIX}"
    head = {"env_id": "e", "commit": "c", "machine": "m"}
    writer = sidecar.SidecarWriter(path, head, staging=False)
    writer.add({"case": "a", "family": "f", "method": "m", "context": "script", "outcome": "pass"})
    result_file.write_text("{}")
    assert resultsdir.recorded(result_file, path) is None  # complete: false
    writer.finish()
    assert resultsdir.recorded(result_file, path).complete
    sidecar.partial_path(path).write_text("{}")  # a recording of it was interrupted
    assert resultsdir.recorded(result_file, path) is None
    sidecar.partial_path(path).unlink()
    result_file.unlink()  # asv never finished
    assert resultsdir.recorded(result_file, path) is None


def _rec(label: str, keys, complete=True) -> Recording:
    cells = {k: {"case": k[0].split("/")[1], "family": k[0].split("/")[0], "method": k[1], "context": k[2],
                 "outcome": "pass", "root_cause": None} for k in keys}
    return Recording(machine="box", commit="c" * 40, env_name=label, env_id=label, python="3.11.7",
                     versions={"pydantic": label}, cells=cells, complete=complete)


GRID = [(f"fam/case{i}", m, c) for i in range(4) for m in ("dask.compute", "Client.compute", "dask.compute(client=)")
        for c in ("script", "kernel")]


def test_a_review_against_a_partial_record_is_not_nothing_broke():
    a, b = _rec("A", GRID), _rec("B", GRID[:5], complete=False)
    rs = ResultSet(Path("results"), [a, b], [], "c" * 40, None)
    review = compare.build_review(rs, a, b)
    assert review["exit_status"] == 1
    assert "nothing broke" not in review["verdict"] and "19 not compared" in review["verdict"]
    assert len(review["not_compared"]["cells"]) == 19 and "partial" in review["not_compared"]["message"]
    # the same cells on both sides, one record partial: still not every cell is vouched for
    same = compare.build_review(rs, _rec("A", GRID[:5]), b)
    assert same["exit_status"] == 1 and "nothing broke" not in same["verdict"]
    whole = compare.build_review(rs, a, _rec("B", GRID))
    assert whole["exit_status"] == 0 and "0 broken" in whole["verdict"] and "0 not compared" in whole["verdict"]


@pytest.mark.slow
def test_the_review_cli_against_a_partial_record_exits_1_naming_the_missing_cells(tmp_path_factory, tmp_path):
    from ..reporting import A, B, recorded

    rec = recorded(tmp_path_factory)
    results = rec.copy(tmp_path / "results")
    path = next(p for p in (results / rec.machine).glob(f"*{sidecar.SUFFIX}") if "pydantic2.9.2" in p.name)
    data = json.loads(path.read_text())
    total = len(data["cells"])
    data["cells"], data["complete"] = data["cells"][:5], False  # what an interrupted run used to leave in place
    path.write_text(json.dumps(data))
    proc = subprocess.run([sys.executable, "-m", "picklematrix", "review", "--results", str(results),
                           "--from", A, "--to", B, "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "nothing broke" not in proc.stdout
    assert f"{total - 5} cell(s) could not be compared" in proc.stdout
    missing = [c for c in rec.sidecar(A)["cells"]
               if (c["case"], c["method"], c["context"]) not in {(x["case"], x["method"], x["context"])
                                                                 for x in data["cells"]}]
    section = proc.stdout.split("### Not compared")[1]
    for c in missing:
        assert f"| `{c['family']}/{c['case']}` | {c['method']} | {c['context']} | `{B}` |" in section, c
    html = (tmp_path / "out" / f"{A}..{B}.html").read_text()
    assert "Not compared" in html and 'class="verdict bad"' in html


MATRIX = textwrap.dedent("""
    [axes]
    python = ["3.11"]
    cloudpickle = ["3.0.0"]
    dask = ["2024.6.2"]
    pydantic = ["2.8.2"]

    [profiles.default]
    baseline = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"
    envs = ["cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"]
""")
ENV = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"


def _nox_env(tmp_path: Path, results: Path) -> dict:
    (tmp_path / "matrix.toml").write_text(MATRIX)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKLEMATRIX_") and k != "TMPDIR"}
    return dict(env, PICKLEMATRIX_MATRIX=str(tmp_path / "matrix.toml"), PICKLEMATRIX_RESULTS=str(results),
                PICKLEMATRIX_ONLY="functions/lambda_square", PICKLEMATRIX_MACHINE="faults",
                PICKLEMATRIX_TOOLS_VENV=str(tmp_path / "tools"))


def _clone(tmp_path: Path) -> Path:
    """A clone of HEAD with a .nox of its own: nobody else's nox session shares its env's directory (the
    asv cluster's state file lives there), and others' uncommitted edits are not in it."""
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    return checkout


def _nox(env: dict, checkout: Path, *posargs) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "nox", "-s", f"matrix({ENV})", *(["--", *posargs] if posargs else [])]
    return subprocess.run(args, cwd=checkout, env=env, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_a_killed_force_rerecord_keeps_the_record_and_the_next_run_records_again(tmp_path):
    results = tmp_path / "results"
    env = _nox_env(tmp_path, results)
    checkout = _clone(tmp_path)
    first = _nox(env, checkout)
    assert first.returncode == 0, (first.stdout + first.stderr)[-5000:]
    (sidecar_path,) = results.glob(f"*/*{sidecar.SUFFIX}")
    result_file = sidecar_path.with_suffix(".json")
    before = {p: p.read_bytes() for p in (sidecar_path, result_file)}
    marker = sidecar.partial_path(sidecar_path)

    # with a case whose cells each run into their timeout, the re-recording lasts long after its marker appears
    # (one trivial case's six cells took under 3 s, and the kill found the recording done)
    slow = dict(env, PICKLEMATRIX_ONLY=env["PICKLEMATRIX_ONLY"] + ",misc/sleep_forever")
    forced = subprocess.Popen([sys.executable, "-m", "nox", "-s", f"matrix({ENV})", "--", "--force"], cwd=checkout,
                              env=slow, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        _wait_for(marker.exists, 600, f"{marker.name} (the recording under way)", forced)
        time.sleep(1)  # its cluster starting or its harness running: 6 s of timeouts at least are left
    finally:
        _kill_session(forced)
    assert {p: p.read_bytes() for p in before} == before, "a killed re-recording changed the complete record"
    assert marker.exists()
    rs = load_results(results, checkout=tmp_path)
    assert any(p.path == str(marker) and "interrupted" in p.message for p in rs.problems), rs.problems

    again = _nox(env, checkout)  # no --force: the interrupted recording is not "already recorded"
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-5000:]
    assert "already recorded" not in out and "interrupted recording" in out
    assert not marker.exists()
    assert sidecar.read(sidecar_path).complete and result_file.exists()
    assert sidecar_path.read_bytes() != before[sidecar_path]  # recorded anew
    done = _nox(env, checkout)
    assert done.returncode == 0 and "already recorded" in done.stdout + done.stderr


def _default_signals():
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _processes_naming(*paths: Path) -> list[str]:
    """The live processes whose command line names one of ``paths`` (a checkout's venvs, a tools venv)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and int(entry) != os.getpid() and any(str(p) in cmdline for p in paths):
            found.append(f"{entry}: {cmdline}")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_run_stopped_in_asv_s_phase_leaves_nothing_running_and_the_same_session_records_at_once(tmp_path, signum):
    """nox stopped (SIGTERM to its process, or Ctrl-C's SIGINT) while asv records an env: asv's processes end
    with the run, and the same session started at once records (it waits for the stopped one to end)."""
    results = tmp_path / "results"
    env = _nox_env(tmp_path, results)
    checkout = _clone(tmp_path)
    first = _nox(env, checkout)
    assert first.returncode == 0, (first.stdout + first.stderr)[-5000:]
    (asv_log,) = results.glob("logs/*/*/asv.log")
    logged = asv_log.stat().st_size

    # (signals as a terminal gives them: a test run in the background inherits an ignored SIGINT)
    stopped = subprocess.Popen([sys.executable, "-m", "nox", "-s", f"matrix({ENV})", "--", "--force"],
                               cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=_default_signals)
    try:
        # asv's phase has begun when its command line is in asv.log (it lasts a second or two)
        _wait_for(lambda: asv_log.stat().st_size > logged, 600, "asv's phase", stopped)
        os.kill(stopped.pid, signum)
        stopped.communicate(timeout=120)
    finally:
        if stopped.poll() is None:
            _kill_session(stopped)
    assert stopped.returncode != 0
    # asv's record of the stopped run ended unfinished (at once, or "interrupted by signal ...")
    assert b"wrote " not in asv_log.read_bytes()[logged:]
    logged = asv_log.stat().st_size
    again = _nox(env, checkout)  # at once: the stopped run may still be ending
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-5000:]
    assert "interrupted recording" in out and "recorded " in out, out[-5000:]
    assert b"wrote " in asv_log.read_bytes()[logged:]
    leftover = _processes_naming(checkout, tmp_path / "tools")
    assert not leftover, "processes of the stopped run outlived it:\n" + "\n".join(leftover)


def test_the_report_names_the_cells_a_partial_record_lacks(tmp_path):
    results = tmp_path / "results"
    cells = [{"case": k[0].split("/")[1], "family": "fam", "method": k[1], "context": k[2], "outcome": "pass"}
             for k in GRID[:4]]
    for env, done, complete in (("envA", cells, True), ("envB", cells[:1], False)):
        writer = sidecar.SidecarWriter(results / "box" / f"0123abcd-{env}{sidecar.SUFFIX}",
                                       {"env": {"python": "3.11.7", "versions": {}}, "env_id": env},
                                       staging=False)
        for cell in done:
            writer.add(cell)
        if complete:
            writer.finish()
    rs = load_results(results, checkout=tmp_path)
    (named,) = [p for p in rs.problems if "partial record" in p.message]
    assert named.path.endswith(f"envB{sidecar.SUFFIX}") and "3 cell(s)" in named.message
    for key in GRID[1:4]:
        assert f"{key[0]} {key[1]} @{key[2]}" in named.message
    (partial,) = [r for r in rs.current() if r.env_id == "envB"]
    assert partial.missing == sorted(GRID[1:4]) and not partial.complete
