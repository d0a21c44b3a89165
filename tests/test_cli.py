"""``python -m picklematrix run``: JSON format, exit codes, an external scheduler."""

import json
import textwrap

import pytest

from picklematrix.outcomes import OUTCOMES
from picklematrix.run.corpus import case_digest

from .conftest import BROKEN_CASES, FIXTURE_CASES, run_cli

CELL_KEYS = {"case", "family", "method", "context", "outcome", "expected", "surprise", "root_cause",
             "seconds", "graph_bytes"}


def _check_schema(data):
    assert set(data["env"]) >= {"python", "versions"}
    assert set(data["env"]["versions"]) == {"cloudpickle", "dask", "distributed", "pydantic"}
    assert data["env"]["python"].count(".") == 2
    for cell in data["cells"]:
        assert CELL_KEYS <= set(cell), cell
        assert cell["outcome"] in OUTCOMES and cell["expected"] in OUTCOMES
        assert cell["surprise"] == (cell["outcome"] != cell["expected"])
        assert cell["context"] == "script"
        assert cell["root_cause"] is None or set(cell["root_cause"]) == {"type", "message"}
        assert cell["seconds"] is None or cell["seconds"] >= 0
        assert cell["graph_bytes"] is None or isinstance(cell["graph_bytes"], int)


def test_run_writes_json_and_exits_0_without_surprises(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("run", "--cases", str(FIXTURE_CASES), "--only", "plain_pass", "--only", "outcomes/task_raises",
                   "--json", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    _check_schema(data)
    assert set(data) == {"format", "env", "cluster", "broken_cases", "env_id", "commit", "machine", "case_dirs",
                         "extra", "case_digest", "complete", "cells", "timing"}
    # no extra pins named in this venv; the content digest of the case folder it read
    assert data["extra"] == {} and data["case_digest"] == case_digest([FIXTURE_CASES])
    assert data["complete"] is True and data["format"] == 1
    assert set(data["timing"]) == {"cluster_start_seconds", "run_seconds", "cells", "compute_seconds"}
    assert {(c["case"], c["method"]) for c in data["cells"]} == {
        (case, m) for case in ("plain_pass", "task_raises")
        for m in ("dask.compute", "dask.compute(client=)", "Client.compute")
    }
    by = {(c["case"], c["method"]): c for c in data["cells"]}
    assert by[("plain_pass", "Client.compute")]["graph_bytes"] > 0
    assert by[("plain_pass", "dask.compute(client=)")]["graph_bytes"] is None
    assert "plain_pass" in proc.stdout and "0 surprise(s)" in proc.stdout


def test_surprise_exits_1_and_is_marked(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "optimist.py").write_text(textwrap.dedent('''
        CASE = {"family": "mine", "summary": "expects a Lock to travel", "expect": "pass"}
        import threading
        import dask
        lock = threading.Lock()
        result = dask.delayed(lambda l: 1)(lock)
        expected = 1
    '''))
    out = tmp_path / "r.json"
    proc = run_cli("run", "--cases", str(tmp_path), "--method", "Client.compute", "--json", str(out), "--no-progress")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cell = json.loads(out.read_text())["cells"][0]
    assert cell["surprise"] and cell["outcome"] == "serialize-error"
    assert "! serialize-error (want pass)" in proc.stdout


def test_broken_cases_are_skipped_named_and_exit_2(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("run", "--cases", str(BROKEN_CASES), "--method", "dask.compute", "--json", str(out), "--no-progress")
    assert proc.returncode == 2
    assert "bad_condition.py:6" in proc.stderr and "skipping" in proc.stderr
    data = json.loads(out.read_text())
    # the valid cases still ran and kept their results
    assert {c["case"] for c in data["cells"]} == {"bad_outcome", "syntax_error", "twice"}
    assert len(data["broken_cases"]) == 9


def test_an_unwritable_results_place_is_one_line_naming_it_and_exit_2(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results directory should be")
    out = blocker / "machine" / "r.json"
    proc = run_cli("run", "--cases", str(FIXTURE_CASES), "--only", "plain_pass", "--method", "dask.compute",
                   "--json", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(out) in errors[0], proc.stderr
    # said before anything ran: no cell's progress line, no table
    assert "plain_pass" not in proc.stdout + proc.stderr.replace(str(out), "")


def test_no_matching_case_is_bad_input():
    proc = run_cli("run", "--cases", str(FIXTURE_CASES), "--only", "no-such-case*", "--no-progress")
    assert proc.returncode == 2
    assert "no case matches" in proc.stderr


@pytest.mark.slow
def test_external_scheduler_is_reported_not_restarted(tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"}) as cluster, \
            Client(cluster, set_as_default=False) as client:
        workers_before = set(client.scheduler_info()["workers"])
        out = tmp_path / "r.json"
        proc = run_cli("run", "--scheduler", cluster.scheduler_address, "--cases", str(FIXTURE_CASES),
                       "--only", "plain_pass", "--only", "hangs", "--method", "Client.compute",
                       "--json", str(out), "--no-progress")
        data = json.loads(out.read_text())
        by = {c["case"]: c for c in data["cells"]}
        assert by["hangs"]["outcome"] == "timeout"
        assert data["cluster"]["owned"] is False
        assert len(data["cluster"]["versions"]["workers"]) == 2
        assert "distributed" in str(data["cluster"]["versions"]["scheduler"])
        # the stuck worker is reported, never restarted; the run stops there (exit 3) rather than run the
        # cells after it on a cluster it may not make whole
        assert data["cluster"]["restarts"] == 0
        assert "could not be recovered" in by["hangs"]["detail"] and data["cluster"]["lost"], data["cluster"]
        assert "plain_pass" not in by
        assert set(client.scheduler_info()["workers"]) == workers_before
        assert proc.returncode == 3, proc.stdout + proc.stderr


@pytest.mark.parametrize("given, want", [
    ([], {"script": 1, "kernel": 1}),
    (["3"], {"script": 3, "kernel": 3}),
    (["3", "script=1"], {"script": 1, "kernel": 3}),
    (["script=1", "3"], {"script": 1, "kernel": 3}),  # a context's own count wins wherever it is
    (["kernel=2"], {"script": 1, "kernel": 2}),
])
def test_samples_per_context(given, want):
    from picklematrix.cli import build_parser
    from picklematrix.run.command import samples_by_context

    args = build_parser().parse_args(["run", *(f"--samples={g}" for g in given)])
    assert samples_by_context(args.samples) == want


@pytest.mark.parametrize("bad, message", [("notebook=2", "unknown context 'notebook'"), ("0", "at least 1"),
                                          ("script=x", "whole number")])
def test_bad_samples_name_the_argument(bad, message):
    proc = run_cli("run", f"--samples={bad}", "--no-progress")
    assert proc.returncode == 2 and message in proc.stderr and "--samples" in proc.stderr


def test_a_run_stopped_midway_keeps_the_cells_done_so_far(tmp_path):
    """Every cell is written as it is done: stopped mid-run, the progress file holds what was measured, and the
    sidecar reader reads it (a head line, then a line per cell: picklematrix.sidecar).

    (SIGTERM, not SIGINT: a process started in the background by a non-interactive shell ignores SIGINT.)
    """
    import os
    import signal
    import subprocess
    import sys
    import time

    from picklematrix.sidecar import partial_path, read

    from .conftest import ROOT

    out = tmp_path / "r.json"
    progress = partial_path(out)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "picklematrix", "run", "--cases", str(FIXTURE_CASES),
                             "--json", str(out), "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, TMPDIR=str(tmp)))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if progress.exists() and len(read(progress).cells) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be stopped"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM  # unwound: its cluster shut down on the way
    finally:
        if proc.poll() is None:
            proc.kill()
    # the progress is in <path>.partial; <path> itself is written only when the run is complete
    assert not out.exists()
    done = read(progress)
    assert done.complete is False and not done.malformed
    assert len(done.cells) >= 2
    _check_schema({**done.head, "cells": done.cells})
    # nor did it leave its cell-log dir behind, with the empty log of the cell it was running
    assert not list(tmp.glob("picklematrix-cells-*")), [str(p) for p in tmp.rglob("*")]


def test_report_and_review_are_subcommands_with_their_own_options(tmp_path):
    missing = tmp_path / "no-results"
    for command in ("report", "review"):
        pair = ["--from", "pydantic=2.8.2", "--to", "pydantic=2.9.2"] if command == "review" else []
        proc = run_cli(command, "--results", str(missing), *pair, timeout=120)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"picklematrix {command}" in proc.stderr and str(missing) in proc.stderr
