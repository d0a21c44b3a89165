"""The console of ``nox -s matrix`` is a few lines a person reads: a line per env and phase with the time since the
env began, never silent for long; the whole output of each step is in ``results/logs/`` (picklematrix.record.logs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest

from picklematrix.record import logs
from picklematrix.run import progress

from .conftest import ROOT

pytestmark = pytest.mark.slow

A = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"
ONLY = "functions/lambda_square,pydantic/toplevel_model"  # 2 cases x 3 methods x 2 contexts: 12 cells
SILENCE = 12.0  # seconds: "nothing silent for more than ~10 s" (a heartbeat every 8 s, relayed within 0.5 s)
ELAPSED = r" \d+:\d\d$"


def _nox(clone, tmp, *args, only=ONLY):
    """``nox`` in ``clone`` as CI runs it (output to a pipe); its exit code and its lines, each with the time
    it came, in seconds since nox started."""
    env = dict(os.environ, PICKLEMATRIX_RESULTS=str(tmp / "results"), PICKLEMATRIX_MACHINE="box",
               PICKLEMATRIX_ONLY=only, PICKLEMATRIX_TOOLS_VENV=str(tmp / "tools"))
    env.pop(logs.CONSOLE_VAR, None)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "nox", "--envdir", str(tmp / "envs"), *args], cwd=clone, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(1200, proc.kill)
    watchdog.start()
    try:
        lines = [(time.monotonic() - started, line.rstrip("\n")) for line in proc.stdout]
        proc.wait()
    finally:
        watchdog.cancel()
    lines.append((time.monotonic() - started, "<end>"))
    return proc.returncode, lines


def _longest_silence(lines) -> tuple[float, str]:
    times = [0.0] + [t for t, _ in lines]
    gap, at = max((b - a, i) for i, (a, b) in enumerate(zip(times, times[1:])))
    return gap, lines[at][1]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    code, lines = _nox(clone, tmp, "-s", f"matrix({A})")
    return tmp, clone, code, lines


def test_the_console_has_a_line_per_phase_with_elapsed_time_and_no_cell_s_line(recorded):
    _, _, code, lines = recorded
    text = "\n".join(line for _, line in lines)
    assert code == 0, text[-5000:]
    ours = [line for _, line in lines if line.startswith(f"{A}: ")]
    for phase in ("build", "verify ok: python 3.11", "cluster", "cells 1/12", "asv", "merge"):
        assert any(line.startswith(f"{A}: {phase}") and re.search(ELAPSED, line) for line in ours), (phase, text)
    assert not [line for _, line in lines if progress.parse(line)], text
    assert "surprise(s) in" not in text and "Discovering benchmarks" not in text  # the harness's and asv's output
    assert "\r" not in text and "\x1b[" not in text  # plain: the console is no terminal
    assert len(lines) < 40, text


def test_the_console_is_never_silent_for_long(recorded):
    _, _, _, lines = recorded
    gap, before = _longest_silence(lines)
    assert gap <= SILENCE, f"{gap:.1f} s of silence before {before!r}:\n" + "\n".join(
        f"{t:6.1f} {line}" for t, line in lines)


def test_the_whole_output_of_each_step_is_in_the_env_s_log_files(recorded):
    tmp, _, _, lines = recorded
    (where,) = (tmp / "results" / logs.LOGS / "box").iterdir()
    assert where.name.endswith(f"-{A}") and f"logs in {where}" in "\n".join(line for _, line in lines)
    env = (where / "env.log").read_text()
    assert env.startswith(logs.STARTED) and "verify ok: python 3.11" in env
    harness = (where / "harness.log").read_text().splitlines()
    assert harness[0].startswith("$ ") and " -m picklematrix run " in harness[0]
    assert len([line for line in harness if progress.parse(line)]) == 12  # every cell's line
    assert any(line.startswith("case ") and "Client.compute @kernel" in line for line in harness)  # the table
    assert "0 surprise(s) in 12 cells" in harness
    asv = (where / "asv.log").read_text()
    assert " -m picklematrix.record.asv_record " in asv and "Discovering benchmarks" in asv
    assert "cells.Compute.time_compute: " in asv and "wrote " in asv
    assert sorted(p.name for p in where.iterdir()) == ["asv.log", "env.log", "harness.log"]


def test_a_failure_shows_its_last_lines_and_where_the_whole_log_is(recorded):
    tmp, clone, _, _ = recorded
    code, lines = _nox(clone, tmp, "-s", f"matrix({A})", "--", "--force", only="no/such_case")
    text = "\n".join(line for _, line in lines)
    assert code != 0
    harness = next((tmp / "results" / logs.LOGS / "box").iterdir()) / "harness.log"
    assert "the harness exited with exit code 2" in text and f"(the whole log: {harness})" in text, text
    assert "error: no case matches --only ['no/such_case']" in text, text  # the harness's own words
    assert "error: no case matches" in harness.read_text()
    assert len(lines) < 40, text
