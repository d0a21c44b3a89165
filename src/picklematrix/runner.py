"""Running the corpus in the current environment: cells, isolation, results.

Each cell (case x compute method x context) runs in a child process forked
from a preloaded server (``multiprocessing`` forkserver): cheap, isolated, and
killable. The harness process only starts the cluster, hands out cells,
enforces timeouts and keeps the results.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

from . import outcomes as oc
from .corpus import Case, environment_versions, expected_outcome, flat_versions
from .methods import METHODS
from .processes import process_context

# The case's timeout covers each compute call (each timing sample gets it
# anew). Connecting a client and defining the cell get this much on top. For
# a method with a wait of its own (Client.compute) the parent waits GRACE
# longer, so that a child whose own wait ran out can still say so: sending one
# small message. A call without one (dask.compute) would say nothing in that
# second: it is stopped when the case's timeout is up.
CONNECT_ALLOWANCE = 15.0
GRACE = 1.0
# events after which the cell's compute clock starts again
CLOCK_EVENTS = ("compute-start", "sample")


def compute_wait(case: Case, method: str) -> float:
    """How long the harness waits for one compute call of ``case`` by ``method``."""
    return case.timeout + (GRACE if METHODS[method].own_wait else 0.0)


@dataclass
class CellResult:
    case: str
    family: str
    method: str
    context: str
    outcome: str
    expected: str
    surprise: bool
    root_cause: dict | None
    seconds: float | None
    graph_bytes: int | None
    samples: list = field(default_factory=list)
    detail: str | None = None
    # the harness's own time for this cell: process/kernel, definition, compute, health check
    wall_seconds: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class RunResult:
    env: dict
    cells: list
    broken_cases: list = field(default_factory=list)
    cluster: dict = field(default_factory=dict)

    @property
    def surprises(self) -> list:
        return [c for c in self.cells if c.surprise]

    def to_json(self) -> dict:
        return {
            "env": self.env,
            "cluster": self.cluster,
            "broken_cases": self.broken_cases,
            "cells": [c.to_json() for c in self.cells],
        }


class Progress:
    """One line per cell on a pipe; a self-updating line on a terminal."""

    def __init__(self, total: int, stream=None, enabled: bool = True):
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.started = time.monotonic()
        self.surprises = 0

    def update(self, cell: CellResult):
        self.done += 1
        self.surprises += cell.surprise
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        width = 16
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        mark = " SURPRISE" if cell.surprise else ""
        # count first: nox -j's status board shows only the start of a session's last line
        line = (
            f"{self.done}/{self.total} [{bar}] {elapsed:.0f}s "
            f"{cell.family}/{cell.case} [{cell.method} @{cell.context}] {cell.outcome}{mark}"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + line[: os.get_terminal_size(self.stream.fileno()).columns - 1])
            if cell.surprise:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class CellRunner:
    """Runs cells in child processes against one cluster."""

    def __init__(self, cluster, *, samples: int | dict = 1, log_dir: str | None = None):
        """``samples``: timing samples per passing cell, one number or ``{context: n}`` (missing: 1)."""
        self.cluster = cluster
        self.samples = samples
        self.ctx = process_context()
        # A directory of its own unless given: where a cell that died leaves its output (its
        # detail names the file). Removed at close when no cell left anything there.
        self.own_log_dir = log_dir is None
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="picklematrix-cells-")
        self.env = environment_versions()
        self.versions = flat_versions(self.env)
        self.kernel = None
        # A cell process that has sent its result and is closing its client: reaped when the next
        # cell starts (see _reap), so that its ending overlaps this cell's health check.
        self.ending = None
        self.kernel_starts = 0
        self.kernel_startup_seconds: list = []

    def samples_for(self, context: str) -> int:
        n = self.samples.get(context, 1) if isinstance(self.samples, dict) else self.samples
        return max(1, int(n))

    def expected(self, case: Case, method: str, context: str) -> str:
        if case.missing_requirements() or context not in case.contexts:
            return oc.NOT_APPLICABLE
        return expected_outcome(
            case,
            method=method,
            context=context,
            versions=self.versions,
            method_default=METHODS[method].default_expectation,
        )

    def run(self, case: Case, method: str, context: str = "script") -> CellResult:
        t0 = time.perf_counter()
        self._reap()  # no cell starts before the previous cell's process has ended
        cell = self._run(case, method, context)
        cell.wall_seconds = time.perf_counter() - t0
        return cell

    def _run(self, case: Case, method: str, context: str) -> CellResult:
        expected = self.expected(case, method, context)

        def result(**fields):
            outcome = fields.pop("outcome")
            return CellResult(
                case=case.case_id,
                family=case.family,
                method=method,
                context=context,
                outcome=outcome,
                expected=expected,
                surprise=outcome != expected,
                root_cause=fields.pop("root_cause", None),
                seconds=fields.pop("seconds", None),
                graph_bytes=fields.pop("graph_bytes", None),
                samples=fields.pop("samples", []),
                detail=fields.pop("detail", None),
            )

        missing = case.missing_requirements()
        if missing:
            return result(outcome=oc.NOT_APPLICABLE, detail=f"requires {', '.join(missing)} (not installed)")
        if context not in case.contexts:
            return result(outcome=oc.NOT_APPLICABLE, detail=f"case applies to context {', '.join(case.contexts)} only")
        if context == "kernel":
            answer, died, timed_out, log_path = self._run_kernel(case, method)
        else:
            answer, died, timed_out, log_path = self._run_child(case, method, context)
        needs_restart = False
        if timed_out:
            # A hung task keeps its worker thread busy for good: replace the
            # workers. A hang that never reached the cluster died with the cell.
            needs_restart = bool(answer.get("submitted"))
            cell = result(outcome=oc.TIMEOUT, seconds=None,
                          detail=f"no result within {case.timeout:g}s of compute"
                          if answer.get("compute_started") else
                          f"cell not defined within {case.timeout + CONNECT_ALLOWANCE:g}s")
        elif answer.get("event") == "result":
            cell = result(
                outcome=answer["outcome"],
                root_cause=answer.get("root_cause"),
                seconds=answer.get("seconds"),
                graph_bytes=answer.get("graph_bytes"),
                samples=answer.get("samples", []),
                detail=answer.get("detail"),
            )
            # a compute call whose own wait ran out left its task running, like a hang
            needs_restart = cell.outcome == oc.WORKER_DIED or (
                cell.outcome == oc.TIMEOUT and bool(answer.get("submitted")))
        else:
            # The cell's process died without an answer. Where had it got to?
            if context == "kernel":
                cause = {"type": "KernelDied", "message": f"the kernel died ({died})"}
            else:
                cause = {"type": "ProcessExit", "message": f"cell process exited with status {died}"}
            if answer.get("compute_started") and not (answer.get("submitted") or answer.get("targets_cluster")):
                cell = result(outcome=oc.RAN_LOCALLY, root_cause=cause,
                              detail="the local computation ended the process")
            else:
                if not log_path:
                    detail = answer.get("detail") or "the kernel died"
                else:  # where its output is, if any, is added below
                    detail = "cell process died" if _has_output(log_path) else "cell process died without output"
                cell = result(outcome=oc.HARNESS_ERROR, root_cause=cause, detail=detail)
                needs_restart = bool(answer.get("submitted"))
        if cell.outcome == oc.HARNESS_ERROR:
            self._reap()  # its output is complete before it is looked at
        # A cell's output is kept only where a harness error may need it, and only if there is some;
        # a kept file is named in the cell's detail.
        if log_path and cell.outcome == oc.HARNESS_ERROR and _has_output(log_path):
            cell.detail = f"{cell.detail + '; ' if cell.detail else ''}output in {log_path}"
        elif log_path:
            try:
                os.unlink(log_path)
            except FileNotFoundError:
                pass
        if needs_restart:
            warning = self.cluster.make_healthy(f"{case.case_id} [{method}] ({cell.outcome})")
        else:
            health = self.cluster.health()
            warning = None
            if not health.ok:
                warning = self.cluster.make_healthy(f"{case.case_id} [{method}]: {'; '.join(health.problems)}")
        if warning:
            cell.detail = f"{cell.detail + '; ' if cell.detail else ''}{warning}"
        return cell

    def _kernel(self):
        if self.kernel is None:
            from .kernel import KernelSession

            self.kernel = KernelSession()
        self.kernel.ensure()
        return self.kernel

    def _run_kernel(self, case: Case, method: str):
        """(state, died, timed_out, log_path) like _run_child, for a cell run in the kernel."""
        from .kernel import COMPUTE_CELL, PREPARE_CELL

        try:
            kernel = self._kernel()
        except Exception as e:
            return {"event": "result", **_harness_error(e, "could not start an IPython kernel")}, None, False, None
        spec = METHODS[method]
        state: dict = {}

        def step(code, timeout, what, **clock):
            reply = kernel.execute(code, timeout, **clock)
            for event in reply.events:
                _absorb(state, event)
            if reply.status in ("timeout", "died"):
                # A wedged or dead kernel is not reused: its threads and state are suspect.
                status = reply.status
                kernel.replace()
                return status
            if reply.status == "error" and what != "cell":
                state.update(event="result", **_harness_error_text(reply.ename, reply.evalue, f"{what} failed"))
                return "error"
            return reply

        r = step(PREPARE_CELL.format(address=self.cluster.address, default=spec.default_client),
                 CONNECT_ALLOWANCE, "preparing the notebook")
        if r == "timeout":
            return state, None, True, None
        if r == "died":
            return state, "while preparing the notebook", False, None
        if r == "error":
            return state, None, False, None
        r = step(case.source, case.timeout + CONNECT_ALLOWANCE, "cell")
        if r in ("timeout", "died"):
            return state, "while running the case's cell" if r == "died" else None, r == "timeout", None
        if r.status == "error":
            # (its client is closed by the next case's preparing cell)
            failure = {"type": r.ename, "message": r.evalue}
            if r.ename == "NotImplementedError":
                state.update(event="result", outcome=oc.NOT_APPLICABLE, root_cause=failure,
                             detail="cell raised NotImplementedError")
            else:
                state.update(event="result", outcome=oc.HARNESS_ERROR, root_cause=failure,
                             detail="the cell itself raised before any compute call")
            return state, None, False, None
        events_path = os.path.join(kernel.tmp, "events.jsonl")
        if os.path.exists(events_path):
            os.unlink(events_path)
        r = step(COMPUTE_CELL.format(method=method, case=case.case_id, timeout=case.timeout,
                                     samples=self.samples_for("kernel"),
                                     events_path=events_path),
                 CONNECT_ALLOWANCE, "compute", clock_events=CLOCK_EVENTS, clock_timeout=compute_wait(case, method))
        if r in ("timeout", "died"):
            # what the kernel wrote before it died or hung (iopub may have lost it)
            if os.path.exists(events_path):
                with open(events_path) as f:
                    for line in f:
                        try:
                            event = json.loads(line)
                        except ValueError:
                            continue  # the last line, cut short by the death
                        if event.get("event") != "result":
                            _absorb(state, event)
            return state, "during the compute call" if r == "died" else None, r == "timeout", None
        return state, None, False, None

    def _reap(self):
        """Wait for the cell process that is ending (killed if it has not within 10 s)."""
        proc, self.ending = self.ending, None
        if proc is not None:
            _end(proc, kill=False)

    def close(self):
        self._reap()
        if self.kernel is not None:
            self.kernel_starts = self.kernel.starts
            self.kernel_startup_seconds = self.kernel.startup_seconds
            self.kernel.close()
            self.kernel = None
        if self.own_log_dir:
            # Empty logs too (a cell cut short when the run was stopped), then the dir if that emptied it:
            # a dead cell's output is kept.
            try:
                for name in os.listdir(self.log_dir):
                    path = os.path.join(self.log_dir, name)
                    if not _has_output(path):
                        os.unlink(path)
                os.rmdir(self.log_dir)
            except OSError:
                pass

    def _run_child(self, case: Case, method: str, context: str):
        from .cell import child_main

        request = {
            "case": case.case_id,
            "path": case.path,
            "source": case.source,
            "method": method,
            "context": context,
            "scheduler": self.cluster.address,
            "timeout": case.timeout,
            "samples": self.samples_for(context),
        }
        log_path = os.path.join(self.log_dir, f"{case.case_id}-{method.replace('(', '').replace(')', '').replace('=', '')}.log")
        reader, writer = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=child_main, args=(request, writer, log_path), daemon=True)
        proc.start()
        writer.close()
        deadline = time.monotonic() + case.timeout + CONNECT_ALLOWANCE
        state: dict = {}
        timed_out = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                if not reader.poll(min(remaining, 1.0)):
                    continue
                try:
                    event = reader.recv()
                except (EOFError, OSError):
                    break
                _absorb(state, event)
                if event.get("event") == "result":
                    break
                if event.get("event") in CLOCK_EVENTS:
                    deadline = time.monotonic() + compute_wait(case, method)
        finally:
            reader.close()
            if timed_out or state.get("event") != "result":
                _end(proc, kill=True)
            else:
                # Its result is in; it closes its client and exits while the harness checks the
                # cluster's health. The next cell waits for it (_reap).
                self.ending = proc
        return state, proc.exitcode, timed_out, log_path


def _end(proc, *, kill: bool) -> None:
    if kill:
        proc.kill()
    proc.join(10)
    if proc.is_alive():
        proc.kill()
        proc.join(5)


def _has_output(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def _absorb(state: dict, event: dict) -> None:
    """Fold one event of a cell (from a child process or a kernel) into what is known of it."""
    kind = event.get("event")
    if kind == "submitted":
        state["submitted"] = True
    elif kind == "sent":
        state["sent"] = True
    elif kind == "compute-start":
        state["compute_started"] = True
        state["targets_cluster"] = event.get("targets_cluster")
    elif kind == "result":
        state.update(event)


def _harness_error(exc: BaseException, detail: str) -> dict:
    return {"outcome": oc.HARNESS_ERROR, "root_cause": oc.describe(exc), "detail": detail}


def _harness_error_text(ename, evalue, detail: str) -> dict:
    return {"outcome": oc.HARNESS_ERROR, "root_cause": {"type": ename, "message": evalue}, "detail": detail}


def run_corpus(cases, methods, contexts=("script",), *, cluster, samples: int | dict = 1, progress: bool = True,
               on_cell=None) -> RunResult:
    runner = CellRunner(cluster, samples=samples)
    grid = [(case, method, context) for case in cases for method in methods for context in contexts]
    bar = Progress(len(grid), enabled=progress)
    cells = []
    try:
        for case, method, context in grid:
            try:
                cell = runner.run(case, method, context)
            except Exception as e:  # one cell's harness failure must not lose the others
                cell = CellResult(case.case_id, case.family, method, context, oc.HARNESS_ERROR,
                                  runner.expected(case, method, context), True, oc.describe(e), None, None,
                                  detail="harness failure while running this cell")
                cell.surprise = cell.outcome != cell.expected
            cells.append(cell)
            bar.update(cell)
            if on_cell is not None:
                on_cell(cell)
    finally:
        bar.close()
        runner.close()
    cluster_info = {
        "address": cluster.address,
        "owned": cluster.owned,
        "workers": cluster.n_workers,
        "restarts": cluster.restarts,
        "warnings": list(cluster.warnings),
    }
    if not cluster.owned:
        cluster_info["versions"] = cluster.worker_versions()
    if runner.kernel_starts:
        cluster_info["kernel_starts"] = runner.kernel_starts
        cluster_info["kernel_startup_seconds"] = runner.kernel_startup_seconds
    return RunResult(env=runner.env, cells=cells, cluster=cluster_info)
