"""Process hygiene: however a run ends, nothing it started outlives it or holds its output open."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from .runs import FAULT_CASES, kill_all, members_left, run_picklematrix, session_members

pytestmark = pytest.mark.slow


def test_a_worker_that_cannot_start_is_an_error_within_the_deadline(tmp_path):
    # a worker preload that never returns: LocalCluster used to wait for it forever, silently
    hang = tmp_path / "hang_preload.py"
    hang.write_text("import time\ntime.sleep(600)\n")
    run = run_picklematrix(tmp_path, "--only", "hangs/then_passes", "--method", "Client.compute", deadline=60,
                           env={"DASK_DISTRIBUTED__WORKER__PRELOAD": f'["{hang}"]',
                                "PICKLEMATRIX_CLUSTER_START_WITHIN": "6"})
    assert run.returncode == 2, (run.returncode, run.stderr[-3000:])
    assert "workers started within 6s" in run.stderr, run.stderr[-3000:]
    assert "PICKLEMATRIX_CLUSTER_START_WITHIN" in run.stderr
    assert not run.survivors, f"processes outlived the run: {run.survivors}"
    assert run.seconds < 30, run.seconds


def test_a_run_stopped_mid_cell_leaves_no_process(tmp_path):
    # SIGTERM (a CI job cancelled) while a cell has stopped its worker (SIGSTOP): that worker would not
    # end by itself, nor close its copy of the run's stdout
    cmd = [sys.executable, "-m", "picklematrix", "run", "--cases", str(FAULT_CASES), "--only", "hangs/stops_worker",
           "--method", "dask.compute", "--json", str(tmp_path / "run.json")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PICKLEMATRIX_CLUSTERS": "1"})
    try:
        deadline = time.monotonic() + 60
        # wait until a worker is stopped (state T), then stop the run
        while time.monotonic() < deadline and not _stopped_members(proc.pid):
            time.sleep(0.2)
        assert _stopped_members(proc.pid), "no worker was stopped by the case"
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"output still open 30s after SIGTERM; session: {session_members(proc.pid)}") \
                from None
        assert proc.returncode == 128 + signal.SIGTERM, proc.returncode
        left = members_left(proc.pid)
        assert not left, f"processes outlived the run: {left}"
    finally:
        kill_all(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _stopped_members(sid: int) -> list:
    stopped = []
    for pid, _ in session_members(sid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    stopped.append(pid)
        except OSError:
            pass
    return stopped
