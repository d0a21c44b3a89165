"""picklematrix.record.asv_record: asv's record of an env, written with asv's own API from a real harness run.

The env is the tests' own (dask, distributed and picklematrix installed), the harness run real, asv real
(its discovery runs in the env's interpreter, as ``asv run``'s does).
"""

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from picklematrix.outcomes import CODE_OUTCOMES
from picklematrix.record import asvconf
from picklematrix.record.asv_record import cell_values
from picklematrix.run.selection import ASV_TIMED_CONTEXTS, COMPUTE, GRAPH_SIZE, OUTCOME, SAMPLES, why_not

from .conftest import ROOT, run_cli

ONLY = "functions/lambda_square,runtime/lock_in_closure,misc/dict_views"


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture(scope="module")
def harness_run(tmp_path_factory):
    """A real harness run of a few cases in the script context, SAMPLES samples per passing cell."""
    tmp = tmp_path_factory.mktemp("asv-record")
    sidecar = tmp / "run.outcomes"
    only = [arg for glob in ONLY.split(",") for arg in ("--only", glob)]
    proc = run_cli("run", "--context", "script", "--samples", str(SAMPLES), *only, "--json", str(sidecar))
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, sidecar


def _request(tmp: Path, sidecar: Path, benchmark_dir: Path | None = None) -> tuple[Path, dict]:
    config = asvconf.write_config(tmp / "asv.conf.json", checkout=ROOT, results_dir=tmp / "results",
                                  html_dir=tmp / "html", env_dir=tmp / "env")
    if benchmark_dir is not None:
        conf = json.loads(config.read_text())
        conf["benchmark_dir"] = str(benchmark_dir)
        config.write_text(json.dumps(conf))
    request = tmp / "request.json"
    request.write_text(json.dumps({"config": str(config), "python": sys.executable, "sidecar": str(sidecar),
                                   "commit": _commit(), "machine": "box"}))
    (tmp / "home").mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(tmp / "home"), PICKLEMATRIX_SIDECAR=str(sidecar), PICKLEMATRIX_ONLY=ONLY)
    return request, env


def _record(tmp, sidecar, **kw):
    request, env = _request(tmp, sidecar, **kw)
    return subprocess.run([sys.executable, "-m", "picklematrix.record.asv_record", str(request)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_asv_records_the_harness_s_values_and_computes_the_statistics(harness_run):
    from asv.results import Results
    from asv_runner.statistics import compute_stats

    tmp, sidecar = harness_run
    proc = _record(tmp, sidecar)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    machine = tmp / "results" / "box"
    assert (machine / "machine.json").exists() and (tmp / "results" / "benchmarks.json").exists()
    (path,) = [p for p in machine.glob("*.json") if p.name != "machine.json"]
    assert path.name.startswith(_commit()[:8] + "-picklematrix-py")
    result = Results.load(str(path))
    cells = {(f"{c['family']}/{c['case']}", c["method"], c["context"]): c
             for c in json.loads(sidecar.read_text())["cells"]}

    def grid(name):
        params = result.get_result_params(name)
        combos = [tuple(p.strip("'") for p in combo) for combo in itertools.product(*params)]
        return zip(combos, result.get_result_value(name, params), result.get_result_stats(name, params),
                   result.get_result_samples(name, params))

    timed = 0
    for key, value, stats, samples in grid(COMPUTE):
        cell = cells.get(key)
        if why_not(COMPUTE, cell) is not None:
            assert value is None or math.isnan(value), key
            continue
        timed += 1
        assert key[2] in ASV_TIMED_CONTEXTS and len(cell["samples"]) == SAMPLES
        # the harness's samples, kept; the value and statistics asv's own
        assert samples == cell["samples"]
        expected_value, expected_stats = compute_stats(cell["samples"], 1)
        assert value == expected_value and stats["repeat"] == SAMPLES and stats["number"] == 1
        assert stats["ci_99_a"] == pytest.approx(expected_stats["ci_99_a"], rel=1e-4)  # asv keeps 5 digits
    assert timed >= 3  # lambda_square passes with every method
    outcomes = 0
    for key, code, _, _ in grid(OUTCOME):
        cell = cells.get(key)
        if why_not(OUTCOME, cell) is None:
            assert CODE_OUTCOMES[int(code)] == cell["outcome"], key
            outcomes += 1
        else:
            assert code is None or math.isnan(code), key
    assert outcomes == len([c for c in cells.values() if c["outcome"] != "not-applicable"])
    sizes = [v for key, v, _, _ in grid(GRAPH_SIZE) if why_not(GRAPH_SIZE, cells.get(key)) is None]
    assert sizes and all(v > 0 for v in sizes)


def test_each_benchmark_holds_exactly_the_cells_its_rule_accepts():
    cells = {
        "f/a|dask.compute|script": {"family": "f", "case": "a", "method": "dask.compute", "context": "script",
                                    "outcome": "pass", "graph_bytes": 900, "samples": [0.02, 0.01, 0.03]},
        "f/a|dask.compute|kernel": {"family": "f", "case": "a", "method": "dask.compute", "context": "kernel",
                                    "outcome": "pass", "graph_bytes": 950, "samples": [0.04, 0.05, 0.06]},
        "f/b|dask.compute|script": {"family": "f", "case": "b", "method": "dask.compute", "context": "script",
                                    "outcome": "serialize-error", "graph_bytes": None, "samples": [0.1]},
    }
    params = [["'f/a'", "'f/b'"], ["'dask.compute'"], ["'script'", "'kernel'"]]
    result, samples, number, recorded = cell_values({"name": COMPUTE, "params": params}, cells)
    assert result[0] is True and samples[0] == [0.02, 0.01, 0.03] and number[0] == 1 and recorded == 1
    assert all(isinstance(v, float) and math.isnan(v) for v in result[1:])  # kernel, a failure, not run
    result, samples, number, recorded = cell_values({"name": OUTCOME, "params": params}, cells)
    assert result[:3] == [0, 0, 2] and math.isnan(result[3]) and samples == number == [None] * 4 and recorded == 3
    result, *_ = cell_values({"name": GRAPH_SIZE, "params": params}, cells)
    assert result[:2] == [900, 950] and all(math.isnan(v) for v in result[2:])


def test_a_benchmark_the_recording_cannot_fill_is_refused_by_name(harness_run, tmp_path):
    _, sidecar = harness_run
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "__init__.py").write_text("")
    (bench / "cells.py").write_text((ROOT / "benchmarks" / "cells.py").read_text()
                                    + "\n\nclass Extra:\n    def track_more(self):\n        return 1\n")
    proc = _record(tmp_path, sidecar, benchmark_dir=bench)
    assert proc.returncode == 1
    assert "cells.Extra.track_more" in proc.stdout and "from the harness's sidecar" in proc.stdout, proc.stdout
    assert not list((tmp_path / "results").glob("box/*-picklematrix-*.json"))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # (a short-lived child, gone already)
        return b""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminated_record_ends_asv_s_discovery_process_too(harness_run, tmp_path, signum):
    """asv starts its discovery in a process group of its own, which a signal to the recording's group misses:
    the record ends it before it exits."""
    _, sidecar = harness_run
    request, env = _request(tmp_path, sidecar)
    proc = subprocess.Popen([sys.executable, "-m", "picklematrix.record.asv_record", str(request)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    discovery = []
    while not discovery and time.monotonic() < deadline and proc.poll() is None:
        discovery = [p for p in _children(proc.pid) if b"discover" in _cmdline(p)]
        time.sleep(0.02)
    assert discovery, "asv's discovery process never started"
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=60)
    deadline = time.monotonic() + 0.2  # (discovery takes a second or more: left running, it would still be)
    while any(_alive(p) for p in discovery) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in discovery), "asv's discovery outlived the record"
    assert proc.returncode == 1 and f"interrupted by signal {int(signum)}: nothing recorded" in out, out
