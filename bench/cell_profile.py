"""Where one cell's time goes, in both contexts: the real harness, its steps timed end to end.

    python bench/cell_profile.py [--python PATH] [--src DIR] [--context script|kernel|all] [--only GLOB ...]

Runs ``picklematrix.run.runner.run_corpus`` (the function ``picklematrix run`` calls: its cluster, its cell
processes, its kernel, its health checks, its progress lines and a real sidecar written after every cell) over
the selected cases (default: the ``functions`` family, the built-in corpus's cheapest cells) with three samples
per passing cell in both contexts (as bench/harness_ab.py: two commits compare at equal samples; a recording
now takes one in the kernel context), and stamps each step with the machine's monotonic clock, which every
process shares:

* in the harness: the previous cell's process waited for, the fork, each event of the cell as it arrives, the
  health check, the progress line and the sidecar write;
* in each cell's process (a module preloaded into the forkserver the cells fork from): the process's start, the
  client's connect, the case's definition, the compute call and its classification, the client's close, the
  exit;
* in the kernel (an IPython startup file): the preparing cell's reset, its client's connect and the global-state
  baseline, the compute cell's compute and classification and the global-state check.

A stamp is counted in the cell whose run (from ``CellRunner.run``'s start to its end) holds it; what a cell's
process or kernel does after its cell has ended (closing its client) overlaps the next cell and is shown apart.
Prints, per context, each step's mean milliseconds per cell, the cell's own compute (its samples), the harness's
overhead (``wall_seconds`` minus the samples, as the sidecar's figures and bench/matrix_bench.py count it) and
its ratio to the compute. The last round is printed (the first warms the cluster and the kernel up).
--python runs it under an env's interpreter (dask, distributed, ipykernel) with this checkout's ``src`` first
(``--src`` names another checkout's, e.g. a worktree at an earlier commit: the same hooks time it).
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMPS_VAR = "PM_CELL_PROFILE_DIR"
# samples per cell in both contexts, spelled out (picklematrix.run.selection.SAMPLES, a script cell's in a
# recording): --src may name a checkout from before that module, measured with the same samples
SAMPLES = 3
HOOKS = "cell_profile"  # this file, imported by name in the forkserver and the kernel

# ---- stamps: one file per process, "<monotonic> <label>" lines, written with os.write (survives os._exit) ----


def stamp(label: str) -> None:
    where = os.environ.get(STAMPS_VAR)
    if not where:
        return
    fd = os.open(os.path.join(where, f"{os.getpid()}.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{time.monotonic():.6f} {label}\n".encode())
    finally:
        os.close(fd)


def _around(owner, name: str, label: str) -> None:
    """Stamp ``label:start`` and ``label:end`` around ``owner.name``."""
    fn = getattr(owner, name)
    if getattr(fn, "_profiled", False):
        return

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        stamp(f"{label}:start")
        try:
            return fn(*args, **kwargs)
        finally:
            stamp(f"{label}:end")

    wrapper._profiled = True
    setattr(owner, name, wrapper)


def install_cell_hooks() -> None:
    """In the forkserver (inherited by every cell process): stamp the cell process's steps."""
    import distributed

    from picklematrix.run import cell

    child_main = cell.child_main

    def profiled_child_main(*args, **kwargs):
        stamp("process:start")
        return child_main(*args, **kwargs)

    cell.child_main = profiled_child_main
    _around(cell, "connect_client", "connect")
    _around(cell, "run_top_level", "define")
    _around(cell, "compute_phase", "compute phase")
    _around(distributed.Client, "close", "close")
    real_exit = os._exit

    def profiled_exit(code):
        stamp("process:exit")
        real_exit(code)

    os._exit = profiled_exit


def install_kernel_hooks() -> None:
    """In the kernel (an IPython startup file imports this module): stamp the notebook cells' steps."""
    import distributed

    from picklematrix.run import inkernel

    for name, label in (("kernel_reset", "kernel reset"), ("_reset", "kernel reset"),
                        ("kernel_prepare", "next notebook")):
        if hasattr(inkernel, name):  # (an earlier harness, with --src, has other names)
            _around(inkernel, name, label)
    _around(inkernel, "kernel_baseline", "globals baseline")
    _around(inkernel, "kernel_compute", "the compute cell's code")
    _around(inkernel, "kernel_changes", "globals check")
    _around(inkernel, "compute_phase", "compute phase")
    init = distributed.Client.__init__

    @functools.wraps(init)
    def profiled_init(self, *args, **kwargs):
        stamp("connect:start")
        try:
            init(self, *args, **kwargs)
        finally:
            stamp("connect:end")

    distributed.Client.__init__ = profiled_init
    _around(distributed.Client, "close", "close")


# Imported by name only (the forkserver also imports the harness's main script, as __mp_main__: not hooked twice)
if __name__ == HOOKS and os.environ.get(STAMPS_VAR):
    if os.environ.get("PM_CELL_PROFILE_KERNEL"):
        install_kernel_hooks()
    else:
        install_cell_hooks()


# ---- the harness side ---------------------------------------------------------------------------------------


def install_harness_hooks(stamps: Path) -> None:
    """In this process: the harness's own steps, and the hooks handed to the forkserver and the kernel."""
    from picklematrix import processes, sidecar
    from picklematrix.cluster import base, local
    from picklematrix.run import kernel, progress, runner, script
    from picklematrix.run.attempt import Attempt

    os.environ[STAMPS_VAR] = str(stamps)
    processes.PRELOAD.append(HOOKS)  # before the server starts: every cell process forks with the hooks
    _around(runner.CellRunner, "run", "cell")
    _around(script.ScriptCells, "reap", "wait for the previous process")
    _around(runner.CellRunner, "_make_whole", "health check")
    _around(local.OwnedCluster, "memory_kills", "memory kills")
    _around(base.BaseCluster, "_ask_workers", "ask the workers")
    for owner in (base.BaseCluster, local.OwnedCluster):
        if hasattr(owner, "quick_health"):  # (not in an earlier harness, with --src)
            _around(owner, "quick_health", "quick check")
    if hasattr(local.OwnedCluster, "_on_loop"):
        _around(local.OwnedCluster, "_on_loop", "the scheduler's loop answering")
    _around(progress.Progress, "update", "progress line")
    _around(sidecar.SidecarWriter, "add", "sidecar write")
    _around(kernel.KernelSession, "ensure", "kernel start")
    _around(kernel.KernelSession, "_globals_changed", "globals verdict")

    import multiprocessing.process

    _around(multiprocessing.process.BaseProcess, "start", "fork")

    absorb = Attempt.absorb

    def profiled_absorb(self, event):
        stamp(f"event {event.get('event')}")
        return absorb(self, event)

    Attempt.absorb = profiled_absorb

    def what(code):
        return ("compute cell" if "kernel_compute(" in code else
                "prepare" if "kernel_reset()" in code or "kernel_prepare_cell(" in code else
                "check cell" if "kernel_report_changes" in code else "case cell")

    if hasattr(kernel.KernelSession, "_collect"):
        # cells are sent (possibly two at once), then waited for: a cell's step is the wait for its end
        send, collect, sent = kernel.KernelSession._send, kernel.KernelSession._collect, {}

        def profiled_send(self, code):
            msg_id = send(self, code)
            sent[msg_id] = what(code)
            return msg_id

        def profiled_collect(self, msg_id, timeout, **kwargs):
            label = sent.pop(msg_id, "case cell")
            stamp(f"execute {label}:start")
            try:
                return collect(self, msg_id, timeout, **kwargs)
            finally:
                stamp(f"execute {label}:end")

        kernel.KernelSession._send, kernel.KernelSession._collect = profiled_send, profiled_collect
    else:
        execute = kernel.KernelSession.execute

        def profiled_execute(self, code, timeout, **kwargs):
            label = what(code)
            stamp(f"execute {label}:start")
            try:
                return execute(self, code, timeout, **kwargs)
            finally:
                stamp(f"execute {label}:end")

        kernel.KernelSession.execute = profiled_execute

    init = kernel.KernelSession.__init__

    def profiled_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        startup = Path(self.tmp) / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        (startup / "00-cell-profile.py").write_text(
            f"import os, sys\nos.environ['PM_CELL_PROFILE_KERNEL'] = '1'\nsys.path.insert(0, {str(ROOT / 'bench')!r})\n"
            f"import {HOOKS}\n")

    kernel.KernelSession.__init__ = profiled_init


def read_stamps(stamps: Path) -> list:
    """[(time, pid, label)], in time order."""
    out = []
    for path in stamps.glob("*.txt"):
        pid = int(path.stem)
        for line in path.read_text().splitlines():
            t, _, label = line.partition(" ")
            out.append((float(t), pid, label))
    return sorted(out)


# The steps of a cell's run (CellRunner.run), in order: TOP adds up to the cell's wall time but for "other"; an
# indented step is part of the one above it. BETWEEN: after a cell's run, before the next one's.
TOP = {
    "script": ["wait for the previous process", "fork", "connect", "define", "compute phase", "result→harness",
               "health check"],
    "kernel": ["wait for the previous process", "kernel start", "execute prepare", "execute case cell",
               "execute compute cell", "execute check cell", "health check"],
}
INNER = {
    "fork": ["fork ahead"],
    "connect": ["connect ahead"],
    "execute prepare": ["next notebook", "kernel reset", "connect", "globals baseline"],
    "execute compute cell": ["the compute cell's code", "compute phase", "result→harness", "globals check",
                             "next notebook"],
    "next notebook": ["kernel reset", "close", "connect", "globals baseline"],
    "health check": ["quick check", "ask the workers", "memory kills", "globals verdict"],
    "quick check": ["the scheduler's loop answering"],
}
BETWEEN = ["progress line", "sidecar write"]
NOTES = {"close": "the cell's client closing",
         "next notebook": "the next case's namespace and client, and the global-state baseline",
         "quick check": "after a cell that ended cleanly: the scheduler's own record, no worker asked",
         "compute phase": "the compute call, its samples, judging the value",
         "kernel start": "once per run, spread over its kernel cells",
         "fork": "from the harness's call to the cell process running",
         "fork ahead": "of which before the cell's run, while the cell before it was checked",
         "connect ahead": "of which before the cell's run, while the cell before it was checked"}
ORDER = [step for steps in TOP.values() for step in steps] + [x for v in INNER.values() for x in v] + BETWEEN + [
    "close"]


def breakdown(stamps: list, cells: list) -> dict:
    """{context: {step: [seconds per cell]}} from the stamps. A step of the harness or of the kernel is counted
    in the cell whose run holds it; a step of a cell's process in that process's cell, wherever it fell (a
    process forked and connected ahead, while the cell before it was checked, shows as "... ahead")."""
    harness = os.getpid()
    windows = []  # (start, end, context)
    # the last round's cells are the last len(cells) runs
    starts = [t for t, pid, label in stamps if pid == harness and label == "cell:start"][-len(cells):]
    ends = [t for t, pid, label in stamps if pid == harness and label == "cell:end"][-len(cells):]
    for (start, end), cell in zip(zip(starts, ends), cells):
        windows.append((start, end, cell.context))
    # a cell process belongs to the cell in whose run its result arrived; a kernel's stamps go by time
    owner: dict = {}
    first_seen: dict = {}
    for t, pid, label in stamps:
        first_seen.setdefault(pid, t)
        if label == "compute phase:end" or label == "define:end":
            i = _window(windows, t)
            if i is not None:
                owner.setdefault(pid, i)
    per: dict = collections.defaultdict(lambda: collections.defaultdict(float))
    open_: dict = {}
    result_sent: dict = {}
    forks = [t for t, pid, label in stamps if pid == harness and label == "fork:start"]
    for t, pid, label in stamps:
        process = pid != harness and pid in owner
        i = owner[pid] if process else _window(windows, t)
        if label == "process:start" and process:
            # the fork: from the harness's call to the cell's own code running in the new process
            fork = max((f for f in forks if f <= t), default=None)
            if fork is not None and i is not None:
                per[i]["fork"] += t - fork
                per[i]["fork ahead"] += max(0.0, min(t, windows[i][0]) - fork)
            continue
        if label.startswith("fork:"):
            continue
        step, _, edge = label.rpartition(":")
        if edge == "start":
            open_[(pid, step)] = t
            continue
        if edge == "end" and (pid, step) in open_:
            t0 = open_.pop((pid, step))
            if i is None or step == "cell":
                continue
            per[i][step] += t - t0
            if process and step in ("connect",):
                per[i][f"{step} ahead"] += max(0.0, min(t, windows[i][0]) - t0)
            if step == "compute phase":
                result_sent[i] = t
            continue
        if i is not None and label == "event result" and i in result_sent:
            per[i]["result→harness"] += t - result_sent[i]
    out: dict = collections.defaultdict(lambda: collections.defaultdict(list))
    for i, (start, end, context) in enumerate(windows):
        steps = per.get(i, {})
        for step in set(ORDER) | set(steps):
            out[context][step].append(steps.get(step, 0.0))
    return out


def _window(windows, t):
    # the cell running at t, or the one that ended last before t (its progress line, its sidecar write, the
    # client closing while the next cell is prepared)
    if not windows or t < windows[0][0] - 1.0:
        return None  # an earlier round
    best = None
    for i, (start, end, _context) in enumerate(windows):
        if start <= t:
            best = i
        else:
            break
    return best


def profile(args) -> int:
    from picklematrix.cluster.local import OwnedCluster
    from picklematrix.run.corpus import load_corpus, select
    from picklematrix.run.methods import METHODS
    from picklematrix.run.runner import run_corpus
    from picklematrix.sidecar import SidecarWriter

    # one directory for the whole run: the forkserver and the kernel read the variable when they start
    stamps = Path(tempfile.mkdtemp(prefix="pm-cell-profile-"))
    install_harness_hooks(stamps)
    cases, problems = load_corpus(None)
    cases = select(cases, args.only or ["functions/*"])
    contexts = ["script", "kernel"] if args.context == "all" else [args.context]
    cluster = OwnedCluster(2).start()
    try:
        for i in range(args.rounds):
            sidecar = SidecarWriter(stamps / f"round{i}.outcomes", {"env": {}})
            sidecar.start()
            with open(os.devnull, "w") as devnull:
                import picklematrix.run.progress as progress_module

                stream = progress_module.sys.stderr
                progress_module.sys.stderr = devnull  # the progress lines are written, to nowhere
                try:
                    t0 = time.perf_counter()
                    result = run_corpus(cases, list(METHODS), contexts, cluster=cluster,
                                        samples={"script": SAMPLES, "kernel": SAMPLES}, progress=True,
                                        on_cell=lambda cell: sidecar.add(cell.to_json()))
                    wall = time.perf_counter() - t0
                finally:
                    progress_module.sys.stderr = stream
            cells = result.cells
        report(read_stamps(stamps), cells, wall)
    finally:
        cluster.close()
    return 0


def report(stamps, cells, wall) -> None:
    ms = lambda seconds: f"{seconds * 1000:7.1f}"  # noqa: E731
    steps = breakdown(stamps, cells)
    print(f"{len(cells)} cells in {wall:.1f} s; per cell, mean milliseconds (last round):")
    for context in ("script", "kernel"):
        mine = [i for i, c in enumerate(cells) if c.context == context and c.outcome != "not-applicable"]
        if not mine:
            continue
        walls = [cells[i].wall_seconds for i in mine]
        compute = [sum(cells[i].samples or []) for i in mine]
        overhead = [w - c for w, c in zip(walls, compute)]
        mean = lambda step: statistics.mean(steps[context].get(step) or [0.0])  # noqa: E731
        outcomes = collections.Counter(cells[i].outcome for i in mine)
        print(f"\n{context} context: {len(mine)} cells ({', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))})")

        def line(step, indent=""):
            note = f"  ({NOTES[step]})" if step in NOTES else ""
            print(f"  {indent}{step:{34 - len(indent)}}{ms(mean(step))}{note}")

        inners = dict(INNER)
        if mean("next notebook"):
            # the harness prepares a case's notebook in the cell before (its steps are shown there), and seldom in
            # a preparing cell of its own
            inners["execute prepare"] = []

        def inner_lines(step, indent, printed):
            # each step once, under the first step that holds it
            for inner in inners.get(step, []):
                if mean(inner) and inner not in printed:
                    printed.add(inner)
                    line(inner, indent)
                    inner_lines(inner, indent + "  ", printed)

        printed = set(TOP[context])
        for step in TOP[context]:
            if not mean(step) and step not in ("health check",):
                continue
            line(step)
            inner_lines(step, "  ", printed)
        # what a process did ahead, during the cell before, is not part of this cell's run
        known = sum(mean(step) for step in TOP[context]) - mean("fork ahead") - mean("connect ahead")
        print(f"  {'other (the harness between steps)':34}{ms(statistics.mean(walls) - known)}")
        print(f"  {'= cell wall (CellRunner.run)':34}{ms(statistics.mean(walls))}")
        print(f"  {'  of which compute (its samples)':34}{ms(statistics.mean(compute))}")
        print(f"  {'  overhead (wall - compute)':34}{ms(statistics.mean(overhead))}"
              f"   = {statistics.mean(overhead) / max(statistics.mean(compute), 1e-9):.2f}x the compute")
        if mean("kernel start"):
            # once per run: a recording's 246 kernel cells share it, these few carry it whole
            net = statistics.mean(overhead) - mean("kernel start")
            print(f"  {'  overhead, kernel start left out':34}{ms(net)}"
                  f"   = {net / max(statistics.mean(compute), 1e-9):.2f}x the compute")
        print("  between cells:")
        for step in BETWEEN:
            line(step, "  ")
        print("  overlapping:")
        line("close", "  ")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default=None, help="an env's interpreter (dask, distributed, ipykernel)")
    p.add_argument("--context", default="all", choices=["script", "kernel", "all"])
    p.add_argument("--only", action="append", default=[], help="case globs (default functions/*)")
    p.add_argument("--rounds", type=int, default=2, help="rounds over the cells; the last is printed")
    p.add_argument("--src", default=str(ROOT / "src"),
                   help="the harness to profile: a checkout's src (default this one's; e.g. a worktree of an "
                        "earlier commit, for a before/after)")
    args = p.parse_args(argv)
    if args.python:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(args.src), str(ROOT / "bench")]))
        given = list(argv if argv is not None else sys.argv[1:])
        rest = [a for i, a in enumerate(given) if not a.startswith(("--python", "--src"))
                and not (i and given[i - 1] in ("--python", "--src"))]
        with tempfile.TemporaryDirectory(prefix="pm-bench-cwd-") as cwd:  # not a checkout: no src on the path
            return subprocess.run([os.path.abspath(args.python) if os.sep in args.python else args.python,
                                   str(Path(__file__).resolve()), *rest], env=env, cwd=cwd).returncode
    return profile(args)


if __name__ == "__main__":
    sys.exit(main())
