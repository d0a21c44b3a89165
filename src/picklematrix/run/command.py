"""``picklematrix run``, ``cases`` and ``versions``: the corpus run in this env, on a cluster, from parsed arguments.

Runs inside every env (its own python, dask, distributed, cloudpickle, pydantic). The command line is
picklematrix.cli's; this is what the commands do. Exit status: 0 all as expected, 1 surprises, 2 bad input;
``run``: 3 it stopped before its last cell (a cluster it may not restart, ``--scheduler``, could not be
recovered; the cells done are kept).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import threading
import time
from collections import Counter

from picklematrix.cluster.limits import CLUSTERS_VAR, clusters_at_once
from picklematrix.cluster.tls import use_security
from picklematrix.requirements_check import MissingExtra, require
from picklematrix.run.corpus import CONTEXTS, CorpusError, case_digest, load_corpus, relpath, select
from picklematrix.run.lanes import Lane, LaneWriter, ScriptQueue, side_by_side, take_over
from picklematrix.sidecar import SidecarError, SidecarWriter
from picklematrix.versions import environment_versions, installed_extra

EXIT_OK, EXIT_SURPRISES, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 1, 2, 3


def _load(args):
    """(cases, problems) of ``--cases`` (default: the built-in corpus), or None after saying why not."""
    try:
        return load_corpus(args.cases)
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return None


def cases(args) -> int:
    """``picklematrix cases``: list the corpus (``--only``), or with ``--check`` only its problems."""
    loaded = _load(args)
    if loaded is None:
        return EXIT_BAD_INPUT
    found, problems = loaded
    return _cases(args, found, problems)


def run(args) -> int:
    """``picklematrix run``: every selected cell of the corpus, in each context, on the cluster the arguments
    name; the results written as they come (``--json``), a table at the end."""
    loaded = _load(args)
    if loaded is None:
        return EXIT_BAD_INPUT
    _exit_status[0] = _run(args, *loaded)
    return _exit_status[0]


def samples_by_context(given) -> dict:
    """{context: samples} from the --samples arguments: CONTEXT=N sets one context, a plain N the others."""
    given = given or []
    plain = [n for context, n in given if context is None]
    out = dict.fromkeys(CONTEXTS, plain[-1] if plain else 1)
    out.update({context: n for context, n in given if context is not None})
    return out


def _print_problems(problems, out=sys.stderr):
    for p in problems:
        print(f"{relpath(p.path)}:{p.line}: {p.message}", file=out)


def _cases(args, cases, problems) -> int:
    if not args.check:
        for case in select(cases, args.only):
            print(f"{case.family}/{case.case_id}: {case.summary}")
    if problems:
        _print_problems(problems)
        print(f"{len(problems)} problem(s) in the corpus; fix the files named above.", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.check:
        print(f"{len(cases)} cases, no problems")
    return EXIT_OK


def _run(args, cases, problems) -> int:
    from picklematrix.cluster.connect import open_cluster
    from picklematrix.run.methods import METHODS
    from picklematrix.run.progress import Progress
    from picklematrix.run.runner import CellResult, run_corpus, run_order

    if problems and args.lane is None:  # (a lane's run says it once, for both)
        _print_problems(problems)
        print(f"skipping {len({p.path for p in problems})} broken case file(s) named above", file=sys.stderr)
    cases = select(cases, args.only)
    if not cases:
        print(f"error: no case matches --only {args.only}", file=sys.stderr)
        return EXIT_BAD_INPUT
    contexts = list(CONTEXTS) if args.context == "all" else [args.context]
    methods = args.method or list(METHODS)
    laned = side_by_side(args, contexts)
    # the contexts this process runs: the script context's alone when the kernel's has a lane
    here = ["script"] if laned else contexts
    broken = [{"path": p.path, "line": p.line, "message": p.message} for p in problems]
    # (a lane's cells go to its run, which writes them)
    sidecar = SidecarWriter(args.json if args.lane is None else None, {
        "env": environment_versions(), "env_id": args.env_id, "commit": args.commit, "machine": args.machine,
        "case_dirs": [os.path.abspath(d) for d in (args.cases or [])], "broken_cases": broken,
        **run_identity(args.cases)})
    try:
        if "kernel" in contexts:
            require("kernel", "the kernel context (--context kernel|all)")
        sidecar.start()  # before the cluster: an unwritable --json fails now, not after the first cell
    except (MissingExtra, SidecarError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # Stopped (a CI job cancelled, nox interrupted, the terminal closed): unwind as for Ctrl-C, so the
    # cluster and the kernel are shut down; the JSON already holds every cell done.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    # each cell, as it is judged (by this process or its lane: two threads): into the sidecar (a crash of the
    # harness loses nothing already measured), the progress, or the lane's pipe
    lock = threading.Lock()
    bar = Progress(len(run_order(cases, methods, contexts)), enabled=not args.no_progress and args.lane is None)
    writer = LaneWriter(args.lane) if args.lane is not None else None

    def record(cell) -> None:
        with lock:
            if writer is not None:
                writer.cell(cell.to_json())
            else:
                sidecar.add(cell.to_json())

    t0 = time.perf_counter()
    kernel = lane = None
    # the script cells, for the kernel lane to take over once its own are done (lanes.ScriptQueue)
    script_queue = ScriptQueue() if laned else None
    clusters_var = os.environ.get(CLUSTERS_VAR)  # restored once the run is over (a caller's process goes on)
    try:
        use_security(args.scheduler, args.scheduler_security)
        if laned:
            # its workers count as clusters at once in the memory limit of each (cluster.limits)
            os.environ[CLUSTERS_VAR] = str(clusters_at_once() * 2)

            def from_lane(cell: dict) -> None:
                cell = CellResult(**cell)
                record(cell)
                bar.update(cell)

            # this run's command line, for the kernel context, writing no file and no progress of its own
            def give(n: int) -> list:
                return [[case.family, case.case_id, method] for case, method, _ in script_queue.give(n)]

            # forked from this process, which has no exit handler of its own yet (lanes.Lane)
            lane = Lane([*args.argv, "--context", "kernel", "--no-progress"], on_cell=from_lane, give=give,
                        entry=getattr(args, "entry", None))
        # However the run ends, no process it started outlives it (see _end_children); registered once the lane
        # is forked, which must not inherit it.
        atexit.register(_end_children)
        # after the security settings (the environment the kernel inherits), before the cluster: the two start
        # side by side
        kernel = _launch_kernel() if "kernel" in here else None
        cluster = open_cluster(args.scheduler, n_workers=args.workers, restartable=args.restartable,
                               cluster_python=args.cluster_python)
    except Exception as e:
        where = args.scheduler or (f"a cluster from {args.cluster_python}" if args.cluster_python
                                   else "a LocalCluster on 127.0.0.1")
        print(f"error: cannot start/connect to {where}: {type(e).__name__}: {e}", file=sys.stderr)
        if kernel is not None:
            kernel.close()
        if lane is not None:
            script_queue.close()
            lane.stop()
        _restore(CLUSTERS_VAR, clusters_var)
        _end_children()
        return EXIT_BAD_INPUT
    cluster_seconds = time.perf_counter() - t0
    samples = samples_by_context(args.samples)
    try:
        try:
            result = run_corpus(cases, methods, here, cluster=cluster, samples=samples, progress=bar,
                                on_cell=record, kernel=kernel, queue=script_queue)
            if writer is not None:  # a lane: its own cells done, it takes script cells over from its run
                took = take_over(writer.ask, cases, cluster=cluster, samples=samples, on_cell=record)
                result.cells += took
                result.cluster.update(cluster.describe(), lane_took=len(took))
            if lane is not None:
                _join_lane(lane, result, cases, methods, contexts, cluster=cluster, samples=samples, bar=bar,
                           record=record)
        finally:
            if lane is not None:
                script_queue.close()
                lane.stop()
            bar.close()
            cluster.close()
            _restore(CLUSTERS_VAR, clusters_var)
            _end_children()
        result.broken_cases = broken
        timing = {"cluster_start_seconds": cluster_seconds,
                  "run_seconds": time.perf_counter() - t0 - cluster_seconds,
                  "cells": len(result.cells),
                  "compute_seconds": sum(sum(c.samples) for c in result.cells)}
        if writer is not None:
            writer.finish(cluster=result.cluster, stopped=result.stopped)
        else:
            print(format_table(result))
            sidecar.finish(cluster=result.cluster, timing=timing)
    except SidecarError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if result.stopped:
        print(f"error: {result.stopped}; the cells done are in {args.json or 'the table above'}", file=sys.stderr)
        return EXIT_STOPPED
    if problems:
        return EXIT_BAD_INPUT
    return EXIT_SURPRISES if result.surprises else EXIT_OK


def _join_lane(lane, result, cases, methods, contexts, *, cluster, samples, bar, record) -> None:
    """Wait for the kernel lane and add its cells and its cluster's record to ``result`` (this lane's), in case
    order. Kernel cells the lane did not hand over (it died, or was killed) run here, on this run's cluster."""
    from picklematrix.run.runner import CellResult, run_corpus

    code = lane.wait()
    cells = [CellResult(**cell) for cell in lane.received]
    info = result.cluster
    end = lane.end or {}
    theirs = end.get("cluster") or {}
    info["restarts"] = info.get("restarts", 0) + theirs.get("restarts", 0)
    info["warnings"] = info.get("warnings", []) + [f"kernel lane: {w}" for w in theirs.get("warnings", [])]
    for key in ("kernel_starts", "kernel_startup_seconds", "lane_took"):
        if key in theirs:
            info[key] = theirs[key]
    info["lanes"] = 2
    if lane.end is None or end.get("stopped"):
        done = {(c.family, c.case, c.method, c.context) for c in result.cells + cells}
        info["warnings"].append(f"the kernel lane ended ({_status(code)}) after {len(cells)} cells; its other cells "
                                "ran after the script cells, on the script cells' cluster")
        # its kernel cells, and the script cells it had taken over but not handed back
        rest = run_corpus(cases, methods, contexts, cluster=cluster, samples=samples, progress=bar, on_cell=record,
                          skip=done)
        cells += rest.cells
        for key in ("kernel_starts", "kernel_startup_seconds"):
            if key in rest.cluster:
                info[key] = info.get(key, 0 if key == "kernel_starts" else []) + rest.cluster[key]
    position = {(case.family, case.case_id): i for i, case in enumerate(cases)}
    result.cells = sorted(result.cells + cells, key=lambda c: (position[(c.family, c.case)], methods.index(c.method),
                                                              contexts.index(c.context)))


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _status(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


def _launch_kernel():
    """The run's IPython kernel, launched now so that it starts (a new interpreter importing IPython: about a
    second) while the cluster does; the first kernel cell waits for it to be ready. None when it cannot be
    launched: the first kernel cell tries again, and says why it cannot."""
    from picklematrix.run.kernel import KernelSession

    kernel = KernelSession()
    try:
        kernel.launch()
    except Exception:
        kernel.close()
        return None
    return kernel


def run_identity(case_dirs) -> dict:
    """The head fields that identify a run beyond its axes' versions, for the env it runs in: ``extra``, the
    installed versions of the extra pins its venv names (picklematrix.versions.installed_extra), and
    ``case_digest``, the content digest of the case folders it reads (None for the built-in corpus;
    picklematrix.run.corpus.case_digest). "Already recorded" requires both to match."""
    return {"extra": installed_extra(), "case_digest": case_digest(case_dirs)}


def versions(args) -> int:
    """``picklematrix versions``: JSON on stdout; exit 2 when the cluster cannot be reached."""
    if not (args.scheduler or args.cluster_python):
        print(json.dumps(environment_versions()))
        return EXIT_OK
    from picklematrix.cluster.base import version_report
    from picklematrix.cluster.connect import open_cluster

    try:
        use_security(args.scheduler, args.scheduler_security)
        cluster = open_cluster(args.scheduler, cluster_python=args.cluster_python, n_workers=1)
    except Exception as e:
        print(f"error: cannot reach {args.scheduler or args.cluster_python}: {type(e).__name__}: {e}",
              file=sys.stderr)
        _end_children()
        return EXIT_BAD_INPUT
    try:
        print(json.dumps(version_report(cluster.client)))
    finally:
        cluster.close()
        _end_children()
    return EXIT_OK


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


# How long the interpreter may take to exit once a run is over: distributed's own exit handlers close
# clients and clusters, and one whose event loop a cell blocked never closes.
EXIT_WITHIN = 15.0
# the run's exit status, for an exit cut short by that deadline (3 until the run has one)
_exit_status = [3]


def _end_children() -> None:
    """End every process the run started that is still alive, then make sure the interpreter exits.

    Cells and workers fork from one server in a process group of its own (picklematrix.processes):
    the group ends, a worker a cell stopped or wedged included, so none holds the run's stdout open.
    Then a daemon timer ends this process if its exit has not within EXIT_WITHIN seconds.
    """
    from picklematrix.processes import end_children

    end_children()
    if not any(t.name == "picklematrix exit deadline" for t in threading.enumerate()):
        def hard_exit():
            sys.stderr.write(f"picklematrix: the interpreter did not exit within {EXIT_WITHIN:g}s of the "
                             f"run's end (a blocked cluster client?); exiting now\n")
            sys.stderr.flush()
            os._exit(_exit_status[0])

        timer = threading.Timer(EXIT_WITHIN, hard_exit)
        timer.name = "picklematrix exit deadline"
        timer.daemon = True
        timer.start()


def format_table(result) -> str:
    methods = list(dict.fromkeys(c.method for c in result.cells))
    contexts = list(dict.fromkeys(c.context for c in result.cells))
    columns = [(m, x) for x in contexts for m in methods]
    rows = {}
    for c in result.cells:
        rows.setdefault((c.family, c.case), {})[(c.method, c.context)] = c
    label = lambda m, x: m if len(contexts) == 1 else f"{m} @{x}"  # noqa: E731
    head = ["case"] + [label(m, x) for m, x in columns]
    body = []
    for (family, case), cells in sorted(rows.items()):
        line = [f"{family}/{case}"]
        for col in columns:
            c = cells.get(col)
            line.append("" if c is None else (f"! {c.outcome} (want {c.expected})" if c.surprise else c.outcome))
        body.append(line)
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    fmt = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    out = [fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in body]
    counts = Counter(c.outcome for c in result.cells)
    out.append("")
    env = result.env
    versions = " ".join(f"{k}={v}" for k, v in env["versions"].items())
    out.append(f"python={env['python']} {versions}")
    out.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    out.append(f"{len(result.surprises)} surprise(s) in {len(result.cells)} cells")
    for c in result.surprises:
        cause = f": {c.root_cause['type']}: {c.root_cause['message'][:160]}" if c.root_cause else ""
        out.append(f"  ! {c.family}/{c.case} [{c.method} @{c.context}] {c.outcome}, expected {c.expected}{cause}")
    return "\n".join(out)
