"""Running `picklematrix run` on the fault cases the way a user pipes it (`picklematrix run ... | cat`):
in a session of its own, stdout and stderr to pipes, within a deadline; then what is left of its session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

FAULT_CASES = Path(__file__).resolve().parent / "cases"


def fault_cases(family: str) -> dict:
    """{case id: Case} of one family of the fault cases (``cases/<family>/``), all of them loadable."""
    from picklematrix.run.corpus import load_corpus

    cases, problems = load_corpus([FAULT_CASES])
    assert not problems, problems
    return {c.case_id: c for c in cases if c.family == family}


def _stat(pid: int) -> list | None:
    """The fields of /proc/PID/stat after the command name, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: it exists and is no zombie (ended, waiting for its parent to reap it)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields is not None else None


def session_members(sid: int) -> list:
    """(pid, command line) of every process in session ``sid``, read from /proc (no psutil)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        # the fields after the command name (which may hold spaces), in parentheses: state ppid pgrp session
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append((int(entry), cmdline))
    return members


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    survivors: list  # processes of the run's session alive once its output ended
    data: dict | None

    def cells(self) -> dict:
        return {(c["case"], c["method"]): c for c in (self.data or {}).get("cells", [])}


def run_picklematrix(tmp_path, *args, deadline: float, env: dict | None = None) -> Run:
    """``picklematrix run --cases tests/faults/cases ARGS --json ...`` with stdout to a pipe; fails the test if
    its output has not ended within ``deadline`` seconds (then every process of its session is killed)."""
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "picklematrix", "run", "--cases", str(FAULT_CASES), "--json", str(out), *args]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, **(env or {})})
    try:
        # like `| cat`: the output ends when every holder of the pipe has closed it, not when the harness exits
        stdout, stderr = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        left = session_members(proc.pid)
        kill_all(proc.pid)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"`{' '.join(cmd)}` still had its output open after {deadline:g}s "
                             f"(exit status {proc.returncode}); its session held {left}\n"
                             f"stdout:\n{stdout[-3000:]}\nstderr:\n{stderr[-5000:]}") from None
    seconds = time.monotonic() - t0
    survivors = members_left(proc.pid)
    kill_all(proc.pid)
    data = json.loads(out.read_text()) if out.exists() else None
    return Run(proc.returncode, stdout, stderr, seconds, survivors, data)


def members_left(sid: int, within: float = 3.0) -> list:
    """The processes of session ``sid`` still there after up to ``within`` seconds (a process killed as the run
    ended may take a moment to be gone)."""
    deadline = time.monotonic() + within
    left = session_members(sid)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = session_members(sid)
    return left


def kill_all(sid: int) -> None:
    for pid, _ in session_members(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
