"""The kernel lane: with --context all, the kernel cells run in a second process on a cluster of its own, side by
side with the script cells; the record is the same as one after the other, and no cell is lost with the lane."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .faults.runs import alive, kill_all, members_left, parent_of, session_members

pytestmark = pytest.mark.slow

LANE_CASES = Path(__file__).resolve().parent / "data" / "lanes"
TAKE_OVER_DATA = Path(__file__).resolve().parent / "data" / "lanes_take_over"


@pytest.fixture
def take_over_cases(tmp_path):
    """Six script-only cases whose task takes a quarter of a second (a_slow_1 ... a_slow_6, from one template),
    and, last in the run's order, z_kills_its_lane."""
    cases = tmp_path / "take_over_cases"
    cases.mkdir()
    template = (TAKE_OVER_DATA / "slow_case.template").read_text()
    for n in range(1, 7):
        (cases / f"a_slow_{n}.py").write_text(template.replace("{n}", str(n)))
    (cases / "z_kills_its_lane.py").write_text((TAKE_OVER_DATA / "z_kills_its_lane.py").read_text())
    return cases


def _run(tmp_path, name, *args, deadline=180):
    """The run, its record, and the processes of its session left once its output ended (none, or it fails)."""
    out = tmp_path / f"{name}.json"
    cmd = [sys.executable, "-m", "picklematrix", "run", "--context", "all", "--json", str(out), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=deadline)
        left = members_left(proc.pid, within=5.0)
        assert not left, f"processes outlived the run: {left}"
    finally:
        kill_all(proc.pid)
    return proc.returncode, stderr, json.loads(out.read_text()) if out.exists() else None


def _outcomes(data):
    return {(c["family"], c["case"], c["method"], c["context"]): (c["outcome"], c["stage"],
                                                                 (c["root_cause"] or {}).get("type"))
            for c in data["cells"]}


def test_side_by_side_records_what_one_after_the_other_does(tmp_path):
    # a worker killed by a task and a hung cell in each lane, among plain cells
    only = ["--only", "functions/lambda_square", "--only", "misc/os_exit_in_task", "--only", "misc/sleep_forever",
            "--only", "functions/closure_free_vars"]
    code, stderr, data = _run(tmp_path, "laned", *only)
    assert code == 0, stderr[-3000:]
    code, serial_stderr, serial_data = _run(tmp_path, "serial", *only, "--serial")
    assert code == 0, serial_stderr[-3000:]
    assert data["cluster"].get("lanes") == 2 and "lanes" not in serial_data["cluster"]
    assert len(data["cells"]) == len(serial_data["cells"]) == 4 * 3 * 2
    assert _outcomes(data) == _outcomes(serial_data)
    assert data["complete"] and data["cluster"]["kernel_starts"] >= 1
    # side by side: a kernel cell was done before the last script cell (the progress says so, in its order)
    contexts = [line.rsplit("@", 1)[1].split("]")[0] for line in stderr.splitlines() if " @" in line]
    assert len(contexts) == 24
    assert contexts.index("kernel") < len(contexts) - 1 - contexts[::-1].index("script"), contexts


def test_a_lane_that_dies_loses_no_cell(tmp_path):
    code, stderr, data = _run(tmp_path, "run", "--cases", str(LANE_CASES))
    assert code == 0, stderr[-3000:]
    assert data["complete"] and len(data["cells"]) == 3 * 3 * 2
    assert not [c for c in data["cells"] if c["surprise"]]
    warnings = [w for w in data["cluster"]["warnings"] if "kernel lane ended" in w]
    assert warnings and "killed by signal 9" in warnings[0], data["cluster"]["warnings"]
    # the lane had handed over the cells before the one that killed it; the rest ran in the run itself
    assert "after 2 cells" in warnings[0], warnings


def test_the_kernel_lane_takes_over_script_cells_and_loses_none_when_it_dies(tmp_path, take_over_cases):
    """Script cells only: the kernel lane has none of its own and takes script cells over from the back of the
    run's order (lanes.ScriptQueue). The last case kills the lane when a cell of it runs there: the cells the
    lane had taken and not handed back run in the run itself, each cell once, outcomes as one lane's."""
    code, stderr, data = _run(tmp_path, "laned", "--cases", str(take_over_cases))
    assert code == 0, stderr[-3000:]
    code, serial_stderr, serial = _run(tmp_path, "serial", "--cases", str(take_over_cases), "--serial")
    assert code == 0, serial_stderr[-3000:]
    assert data["complete"] and len(data["cells"]) == 7 * 3 * 2
    assert _outcomes(data) == _outcomes(serial)
    assert not [c for c in data["cells"] if c["surprise"]]
    keys = [(c["case"], c["method"], c["context"]) for c in data["cells"]]
    assert len(set(keys)) == len(keys)
    # the lane ran a cell of the last case (its order's back): that killed it
    warnings = [w for w in data["cluster"]["warnings"] if "kernel lane ended" in w]
    assert warnings and "killed by signal 9" in warnings[0], data["cluster"]["warnings"]


def test_a_lane_takes_over_script_cells_once_its_own_are_done(tmp_path, take_over_cases):
    only = ["--only", "take_over/a_slow_*"]
    code, stderr, data = _run(tmp_path, "laned", "--cases", str(take_over_cases), *only)
    assert code == 0, stderr[-3000:]
    assert data["complete"] and len(data["cells"]) == 6 * 3 * 2
    assert not [c for c in data["cells"] if c["surprise"]] and not data["cluster"]["warnings"]
    # 18 script cells of about 0.3 s: the lane, started with the run, has taken some over
    assert data["cluster"]["lanes"] == 2 and 0 < data["cluster"]["lane_took"] < 18, data["cluster"]


def test_a_run_that_cannot_answer_its_lane_still_lets_it_end(take_over_cases):
    """The run answers the lane's request for script cells from its reader thread: should that fail, the lane is
    answered none all the same (a reader that died would leave the lane waiting, and the run waiting on it)."""
    from picklematrix.run.lanes import Lane

    def give(n):
        raise RuntimeError("no queue")

    received = []
    lane = Lane(["run", "--cases", str(take_over_cases), "--only", "take_over/a_slow_1", "--context", "kernel",
                 "--no-progress"], on_cell=received.append, give=give)
    try:
        assert lane.proc.wait(timeout=120) == 0
        lane.wait()
    finally:
        lane.stop()
    assert lane.end is not None and lane.end["cluster"]["lane_took"] == 0
    assert [c["outcome"] for c in received] == ["not-applicable"] * 3  # its kernel cells: a script-only case


def test_a_run_killed_outright_takes_its_lane_with_it(tmp_path):
    cmd = [sys.executable, "-m", "picklematrix", "run", "--context", "all", "--only", "misc/sleep_forever",
           "--only", "functions/*", "--json", str(tmp_path / "run.json")]
    err = tmp_path / "stderr"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        lane = zygote = kernel = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and kernel is None:
            lane = _lane_of(proc.pid)
            # its kernel is forked by a zygote it started (picklematrix.run.kernelzygote), in a session of its own
            zygote = next((pid for pid in _children(lane) if "kernelzygote" in _cmdline(pid)), None) if lane else None
            kernel = next(iter(_children(zygote)), None) if zygote else None
            time.sleep(0.2)
        assert lane and kernel, (session_members(proc.pid), err.read_text()[-3000:])
        os.kill(proc.pid, signal.SIGKILL)  # no handler runs: the lane must see it by itself
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(alive(pid) for pid in (lane, zygote, kernel)):
            time.sleep(0.2)
        assert not alive(lane), "the lane outlived its run"
        assert not alive(kernel), "the lane's kernel outlived its run"
        assert not alive(zygote), "the lane's kernel zygote outlived its run"
    finally:
        kill_all(proc.pid)


def _lane_of(run: int) -> int | None:
    """The kernel lane of the run ``run``: its child running ``picklematrix run`` (forked, with the run's command
    line; or a new interpreter, with ``--lane``), not its forkserver or resource tracker."""
    return next((pid for pid in _children(run) if " run " in _cmdline(pid) and "multiprocessing" not in _cmdline(pid)),
                None)


def test_the_lane_is_forked_from_its_run_with_a_new_process_s_descriptors(tmp_path):
    """The lane is a fork of its run (its command line, its parent), not a new interpreter importing everything
    again; its standard input is the run's answers, not the run's own standard input."""
    cmd = [sys.executable, "-m", "picklematrix", "run", "--context", "all", "--only", "misc/sleep_forever",
           "--only", "functions/*", "--json", str(tmp_path / "run.json")]
    err = tmp_path / "stderr"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)
    try:
        lane = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and lane is None:
            lane = _lane_of(proc.pid)
            time.sleep(0.1)
        assert lane, err.read_text()[-3000:]
        assert _cmdline(lane) == _cmdline(proc.pid) and parent_of(lane) == proc.pid
        run_stdin = os.readlink(f"/proc/{proc.pid}/fd/0")
        lane_fds = {fd: os.readlink(f"/proc/{lane}/fd/{fd}") for fd in os.listdir(f"/proc/{lane}/fd")
                    if os.path.exists(f"/proc/{lane}/fd/{fd}")}
        assert lane_fds["0"] != run_stdin and run_stdin not in lane_fds.values(), (run_stdin, lane_fds)
        proc.stdin.close()
        assert proc.wait(timeout=180) == 0, err.read_text()[-3000:]
    finally:
        kill_all(proc.pid)
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["complete"] and data["cluster"]["lanes"] == 2 and not data["cluster"]["warnings"]
    assert len(data["cells"]) == 11 * 3 * 2 and not [c for c in data["cells"] if c["surprise"]]


def test_a_lane_is_a_new_interpreter_where_another_thread_runs(take_over_cases):
    """A fork has the forking thread only (a lock another one held would stay held): with a second thread
    running, the lane is ``picklematrix run ... --lane FD`` in a new interpreter, and works the same."""
    import threading

    from picklematrix.cli import main
    from picklematrix.run.lanes import Lane

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    received = []
    try:
        lane = Lane(["run", "--cases", str(take_over_cases), "--only", "take_over/a_slow_1", "--context", "kernel",
                     "--no-progress"], on_cell=received.append, give=lambda n: [], entry=main)
        try:
            # (its command, not /proc's: just after the exec, /proc/PID/cmdline may still read empty)
            assert isinstance(lane.proc, subprocess.Popen) and "--lane" in lane.proc.args
            assert lane.wait() == 0
        finally:
            lane.stop()
    finally:
        stop.set()
    assert [c["outcome"] for c in received] == ["not-applicable"] * 3 and lane.end is not None


FORKED_LANE_BESIDE_A_CHILD = """
import multiprocessing, sys, time
from picklematrix.cli import main
from picklematrix.run.lanes import Lane

child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(120,), daemon=True)
child.start()
lane = Lane(["run", "--cases", sys.argv[1], "--only", "take_over/a_slow_1", "--context", "kernel", "--no-progress"],
            on_cell=lambda cell: None, give=lambda n: [], entry=main)
print(type(lane.proc).__name__, lane.wait(), child.is_alive(), flush=True)
child.kill()
"""


def test_a_forked_lane_leaves_its_run_s_own_children_alone(take_over_cases):
    """The lane inherits the run's list of multiprocessing children with the fork: ending, it must not take them
    for its own (multiprocessing's exit handler terminates the daemonic ones it believes are)."""
    out = subprocess.run([sys.executable, "-c", FORKED_LANE_BESIDE_A_CHILD, str(take_over_cases)],
                         capture_output=True, text=True, timeout=180)
    assert out.stdout.split() == ["ForkedLane", "0", "True"], out.stdout + out.stderr[-3000:]


def _children(pid: int) -> list:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and parent_of(int(p)) == pid]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


