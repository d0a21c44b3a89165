"""asv's record of one env, written with asv's own API from what the harness run measured (its sidecar).

Runs in the asv tools venv (``python -m picklematrix.record.asv_record REQUEST.json``, started by
picklematrix.record.recording). asv itself still

- names the machine (``~/.asv-machine.json``, ``<machine>/machine.json``) and the env (through the env plugin,
  picklematrix.record.asv_env, which reads the env's installed versions);
- discovers the benchmarks in the env's interpreter (``benchmarks/``: their names, parameter grid and code
  versions, ``benchmarks.json``), as ``asv run`` does;
- computes every timing's statistics (``asv.results.Results.add_result``: the median, the 99% confidence
  interval ``asv compare`` and the review test, the quartiles) from the samples, and keeps the samples;
- writes the result file (``Results.save``), which ``asv publish``, ``asv compare`` and the report read.

What it does not do any more is start a benchmark process per cell: the values are the harness's. An outcome
code and a graph size are the sidecar's (they always were: ``track_*`` only read it); a timing's samples are
the ones the harness run took of the cell's compute call (in the contexts ``selection.ASV_TIMED_CONTEXTS``
names), under the rules ``cells.Compute`` gives asv (``number = 1``, one call per sample; ``repeat =
selection.REPEAT``: ``SAMPLES``, or ``MIN_SAMPLES`` once ``SAMPLE_TIME`` has passed; no warm-up; the cell's
set-up, defining it and settling its client, outside the timed call). Which cells each benchmark records is
picklematrix.run.selection's rule, the one the benchmarks' own ``setup`` applies when asv runs them itself
(asv on its own, without a sidecar).

A SIGTERM or SIGHUP ends this process as a Ctrl-C would: asv then ends the discovery process it started (in a
process group of its own) before this one exits, so nothing of asv outlives the recording.
"""

from __future__ import annotations

import ast
import datetime
import itertools
import json
import math
import signal
import sys
import time
from pathlib import Path

from picklematrix.outcomes import OUTCOME_CODES, OUTCOMES
from picklematrix.run.selection import COMPUTE, GRAPH_SIZE, OUTCOME, why_not
from picklematrix.sidecar import read as read_sidecar

class AsvRecordError(Exception):
    """The record cannot be written: the message says why and what to do."""


_SIGNALLED: list = []


def _interrupt(signum, frame):
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")


def cell_values(benchmark: dict, cells: dict) -> tuple[list, list, list, int]:
    """asv's ``result``, ``samples`` and ``number`` columns of ``benchmark`` over its whole parameter grid (in
    asv's order: ``itertools.product`` of its params), from the sidecar's ``cells`` ({cell key: cell}); and how
    many cells it records. A cell the benchmark cannot measure (``selection.why_not``) is NaN, asv's n/a."""
    name = benchmark["name"]
    result, samples, number = [], [], []
    recorded = 0
    for combo in itertools.product(*benchmark["params"]):
        case, method, context = (ast.literal_eval(p) for p in combo)
        cell = cells.get(f"{case}|{method}|{context}")
        value, sample, n = math.nan, None, None
        if why_not(name, cell) is None:
            if name == OUTCOME:
                value = OUTCOME_CODES[cell["outcome"]]
            elif name == GRAPH_SIZE:
                value = cell["graph_bytes"]
            elif cell.get("samples"):  # COMPUTE: asv computes the value and statistics from the samples
                value, sample, n = True, [float(s) for s in cell["samples"]], 1
        recorded += not (isinstance(value, float) and math.isnan(value))
        result.append(value)
        samples.append(sample)
        number.append(n)
    return result, samples, number, recorded


def record(request: dict, log=print) -> Path:
    """Write the asv result of one env from its sidecar; the result file's path. Raises AsvRecordError.

    ``request`` (JSON, written by the recording): ``config`` (asv.conf.json, picklematrix.record.asvconf),
    ``python`` (the env's interpreter), ``sidecar``, ``commit``, ``machine``.
    """
    from asv import util
    from asv.benchmarks import Benchmarks
    from asv.config import Config
    from asv.environment import get_environments
    from asv.machine import Machine, MachineCollection
    from asv.plugin_manager import plugin_manager
    from asv.repo import get_repo
    from asv.results import Results, get_filename
    from asv.runner import BenchmarkResult

    conf = Config.load(request["config"])
    for plugin in conf.plugins:
        plugin_manager.import_plugin(plugin)
    # what `asv machine --yes --machine NAME` writes, then what `asv run --machine NAME` reads and saves
    try:
        MachineCollection.load(request["machine"])
    except util.UserError:
        MachineCollection.save(request["machine"], {"machine": request["machine"]})
    machine = Machine.load(machine_name=request["machine"], machine=request["machine"])
    machine.save(conf.results_dir)
    environments = list(get_environments(conf, [f"picklematrix:{request['python']}"]))
    if len(environments) != 1:
        raise AsvRecordError(f"asv found no environment for {request['python']} (the picklematrix plugin)")
    env = environments[0]
    repo = get_repo(conf)
    commit = repo.get_hash_from_name(request["commit"])

    sidecar = read_sidecar(request["sidecar"], outcomes=OUTCOMES)
    cells = sidecar.by_key()
    started = time.perf_counter()
    benchmarks = Benchmarks.discover(conf, repo, environments, [commit])
    log(f"discovered {len(benchmarks)} benchmarks in {time.perf_counter() - started:.1f} s")
    unknown = sorted(set(benchmarks) - {OUTCOME, GRAPH_SIZE, COMPUTE})
    if unknown:
        raise AsvRecordError(f"benchmarks/ declares {', '.join(unknown)}: the recording knows how to fill "
                             f"{OUTCOME}, {GRAPH_SIZE} and {COMPUTE} only, from the harness's sidecar")

    params = dict(machine.__dict__, python=env.python, **env.requirements)
    results = Results(params, env.requirements, commit, repo.get_date(commit), env.python, env.name,
                      env.env_vars)
    now = datetime.datetime.now(datetime.timezone.utc)
    for name, benchmark in sorted(benchmarks.items()):
        values, samples, number, recorded = cell_values(benchmark, cells)
        timed = sum(sum(s) for s in samples if s)
        results.add_result(benchmark, BenchmarkResult(result=values, samples=samples, number=number, errcode=0,
                                                      stderr="", profile=None),
                           started_at=now, duration=timed if name == COMPUTE else None, record_samples=True)
        log(f"{name}: {recorded} cells recorded" + (f" ({timed:.2f} s of timing samples)" if name == COMPUTE
                                                   else ""))
    benchmarks.save()
    results.save(conf.results_dir)
    return Path(conf.results_dir) / get_filename(params["machine"], commit, env.name)


def main(argv=None) -> int:
    """``python -m picklematrix.record.asv_record REQUEST.json``: 0 recorded; 1 not (the reason printed)."""
    from asv import util
    from asv.console import log as asv_log

    argv = sys.argv[1:] if argv is None else argv
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    asv_log.enable(verbose=False)
    request = json.loads(Path(argv[0]).read_text())
    try:
        path = record(request, log=asv_log.info)
        message, code = f"wrote {path}", 0
    except (AsvRecordError, util.UserError, util.ProcessError, KeyboardInterrupt) as e:
        # (asv's discovery turns the KeyboardInterrupt of a signal into a UserError)
        message = (f"interrupted by signal {_SIGNALLED[0]}: nothing recorded" if _SIGNALLED else f"error: {e}")
        code = 1
    asv_log.flush()
    print(message, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
