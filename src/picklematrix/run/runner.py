"""Running the corpus in the current environment: each cell run in its context, judged into a CellResult.

Each cell (case x compute method x context) runs elsewhere: in a process of
its own forked from a preloaded server (script context, picklematrix.run.script)
or in the run's IPython kernel (picklematrix.run.kernel). The harness process only
starts the cluster, hands out cells, enforces timeouts, judges what came back
(an Attempt) and keeps the cluster healthy between cells.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field

from picklematrix import outcomes as oc
from picklematrix.cluster.base import SHUT_DOWN, ClusterHung, Health
from picklematrix.run.attempt import CONNECT_ALLOWANCE, Attempt
from picklematrix.run.corpus import Case, condition_versions, expected_outcome
from picklematrix.run.methods import METHODS
from picklematrix.run.progress import Progress
from picklematrix.run.script import ScriptCells, has_output
from picklematrix.versions import environment_versions, flat_versions


@dataclass
class CellResult:
    """One cell's result, as the JSON records it."""

    case: str
    family: str
    method: str
    context: str
    outcome: str
    expected: str
    surprise: bool
    root_cause: dict | None = None
    # where a failure happened: one of outcomes.STAGES (None for a pass, or where it is not known)
    stage: str | None = None
    seconds: float | None = None
    graph_bytes: int | None = None
    samples: list = field(default_factory=list)
    detail: str | None = None
    # the harness's own time for this cell: process/kernel, definition, compute, health check
    wall_seconds: float | None = None

    @classmethod
    def of(cls, case: Case, method: str, context: str, expected: str, outcome: str, **evidence) -> "CellResult":
        """The result of ``case`` by ``method`` in ``context``; a surprise when ``outcome`` is not ``expected``."""
        return cls(case=case.case_id, family=case.family, method=method, context=context, outcome=outcome,
                   expected=expected, surprise=outcome != expected, **evidence)

    def add_detail(self, text: str) -> None:
        self.detail = f"{self.detail}; {text}" if self.detail else text

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class RunResult:
    """A whole run: the environment's versions, every cell, the broken case files and the cluster's record."""

    env: dict
    cells: list
    broken_cases: list = field(default_factory=list)
    cluster: dict = field(default_factory=dict)
    # why the run stopped before its last cell (a cluster it may not restart was lost), else None
    stopped: str | None = None

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


class CellRunner:
    """Runs cells against one cluster: each in its context, judged, and the cluster made whole after it."""

    def __init__(self, cluster, *, samples: int | dict = 1, log_dir: str | None = None, kernel=None):
        """``samples``: timing samples per passing cell, one number or ``{context: n}`` (missing: 1).
        ``log_dir``: where a script cell that died leaves its output (default: a directory of its own).
        ``kernel``: a KernelSession launched already (picklematrix.run.command starts it beside the cluster);
        else the first kernel cell starts one. The runner closes it."""
        self.cluster = cluster
        self.samples = samples
        self.script = ScriptCells(log_dir)
        self.env = environment_versions()
        self.versions = flat_versions(self.env)
        # what a case's expectations read: the client's versions, and the cluster's for its cluster_* conditions
        self.condition_versions = condition_versions(self.versions, _cluster_versions(cluster))
        self.kernel = kernel
        self.kernel_starts = 0
        self.kernel_startup_seconds: list = []
        self.kernel_warning: str | None = None  # why its kernels were launched, not forked (KernelSession)
        # what the runner learns of a case once, keyed by (case id, path): the requirements it misses (each
        # looked up in the installed distributions' metadata, about a millisecond), whether its code names a
        # client (see _names_client)
        self._missing: dict = {}
        self._named: dict = {}

    def samples_for(self, context: str) -> int:
        n = self.samples.get(context, 1) if isinstance(self.samples, dict) else self.samples
        return max(1, int(n))

    def expected(self, case: Case, method: str, context: str) -> str:
        """The outcome ``case`` expects of ``method`` in ``context`` in this environment."""
        if self._missing_requirements(case) or context not in case.contexts:
            return oc.NOT_APPLICABLE
        return expected_outcome(
            case,
            method=method,
            context=context,
            versions=self.condition_versions,
            method_default=METHODS[method].default_expectation,
        )

    def run(self, case: Case, method: str, context: str = "script", following: tuple | None = None,
            next_kernel: str | None = None, ahead: tuple | None = None) -> CellResult:
        """Run one cell and judge it; the cluster is healthy again when this returns.

        ``following``: the cell that runs next, ``(case, method, context)``. A script cell's process is
        started for it (and connects its client) as soon as this cell's answer is in. ``ahead``: the cell after
        that one: a script cell's process is forked for it then (see ScriptCells.fork_ahead). ``next_kernel``:
        the method of the next kernel cell to run, if any: a kernel cell prepares that one's notebook."""
        t0 = time.perf_counter()
        if context != "kernel" or self._not_applicable(case, context) is not None:
            # No cell starts before the previous cell's process has ended (its answer is in: it is exiting). A
            # kernel cell waits for it before its compute cell (see _attempt), its case's cell going on meanwhile.
            self.script.reap()
        cell = self._run(case, method, context, following, next_kernel, ahead)
        cell.wall_seconds = time.perf_counter() - t0
        return cell

    def _run(self, case: Case, method: str, context: str, following: tuple | None = None,
             next_kernel: str | None = None, ahead: tuple | None = None) -> CellResult:
        expected = self.expected(case, method, context)
        reason = self._not_applicable(case, context)
        if reason is not None:
            return CellResult.of(case, method, context, expected, oc.NOT_APPLICABLE, detail=reason)
        started = time.time()
        address, restarts = self.cluster.address, self.cluster.restarts
        prepared = []

        def prepare_following(connect: bool = True):
            # The next script cell's process: forked before a kernel cell's own (its fork then falls in the
            # notebook's cells before the compute), and connecting its client once this cell's compute is done,
            # while this cell finishes (a kernel cell's global-state check and next notebook; the judging). Then
            # the process of the script cell after it is forked, to wait unconnected until its turn.
            if prepared:
                if connect:
                    self.script.connect()
                    fork_ahead()
            elif following is not None and following[2] == "script" and self._not_applicable(
                    following[0], "script") is None:
                prepared.append(True)
                self.script.prepare(following[0], following[1], address=address, samples=self.samples_for("script"),
                                    connect=connect)
                if connect:
                    fork_ahead()

        def fork_ahead():
            if ahead is not None and ahead[2] == "script" and self._not_applicable(ahead[0], "script") is None:
                self.script.fork_ahead(ahead[0], ahead[1], address=address, samples=self.samples_for("script"))

        if context == "kernel":
            prepare_following(connect=False)
        attempt = self._attempt(case, method, context, on_result=prepare_following, next_kernel=next_kernel)
        prepare_following()
        cell = _judge(attempt, case, method, context, expected)
        if attempt.log_path:
            self._keep_output(cell, attempt.log_path)
        if cell.outcome in (oc.WORKER_DIED, oc.TIMEOUT):
            # a worker its nanny restarted for memory: the limit, not the task, ended it
            for line in self.cluster.memory_kills(since=started):
                cell.add_detail(line)
        warning = self._make_whole(case, method, cell, busy=_leaves_workers_busy(attempt, cell.outcome),
                                   clean=_ended_cleanly(attempt, cell.outcome),
                                   settled=cell.outcome in _SETTLED or not attempt.sent)
        if warning:
            cell.add_detail(warning)
        if self.cluster.restarts != restarts or self.cluster.address != address or getattr(self.cluster, "lost", None):
            # The next cell's process connected to a cluster that has since been mended or replaced: it
            # starts anew, as every cell did before the cluster was whole again. (The one forked for the cell
            # after it has not connected: it is kept unless the cluster's address changed.)
            self.script.discard(ahead=False)
        return cell

    def _attempt(self, case: Case, method: str, context: str, *, on_result=None,
                 next_kernel: str | None = None) -> Attempt:
        samples = self.samples_for(context)
        if context != "kernel":
            return self.script.run(case, method, address=self.cluster.address, samples=samples)
        try:
            kernel = self._kernel()
        except Exception as e:
            self.script.reap()
            return Attempt().fail(oc.describe(e), "could not start an IPython kernel")
        return kernel.run_cell(case, method, address=self.cluster.address, samples=samples, on_result=on_result,
                               then=None if next_kernel is None else METHODS[next_kernel].default_client,
                               before_compute=self.script.reap, named=self._names_client(case))

    def _kernel(self):
        if self.kernel is None:
            from picklematrix.run.kernel import KernelSession

            self.kernel = KernelSession()
        self.kernel.ensure()
        return self.kernel

    def _missing_requirements(self, case: Case) -> list:
        key = (case.case_id, case.path)
        if key not in self._missing:
            self._missing[key] = case.missing_requirements()
        return self._missing[key]

    def _not_applicable(self, case: Case, context: str) -> str | None:
        """Why ``case`` does not apply in ``context`` here (None: it does)."""
        missing = self._missing_requirements(case)
        if missing:
            return f"requires {', '.join(missing)} (not installed)"
        if context not in case.contexts:
            return f"case applies to context {', '.join(case.contexts)} only"
        return None

    def _names_client(self, case: Case) -> bool:
        """Whether the case's code names a client (and so could reach the scheduler: run_on_scheduler)."""
        key = (case.case_id, case.path)
        if key not in self._named:
            from picklematrix.run.kernel import names_client

            self._named[key] = names_client(case.source)
        return self._named[key]

    def _keep_output(self, cell: CellResult, log_path: str) -> None:
        """A script cell's output is kept only where a harness error or a dead client may need it, and only if
        there is some; a kept file is named in the cell's detail."""
        keep = cell.outcome in (oc.HARNESS_ERROR, oc.CLIENT_DIED)
        if keep:
            self.script.reap()  # its output is complete before it is looked at
        if self.script.keep_output(log_path, keep=keep):
            cell.add_detail(f"output in {log_path}")

    def _make_whole(self, case: Case, method: str, cell: CellResult, *, busy: bool, clean: bool = False,
                    settled: bool = False) -> str | None:
        """Check the cluster after ``cell``, replacing workers it left ``busy``; the warning, if any.

        After a cell that ended ``clean`` (see _ended_cleanly) the cluster's quick check comes first (no
        round trip to each worker; ``settled``: no task of the cell can still run); the full check only
        when that one cannot tell, and after every other cell."""
        health = None
        if busy:
            # no health check to wait through: the workers are replaced whatever it would say
            health = Health([SHUT_DOWN], shut_down=True) if self.cluster.shut_down() else Health()
        elif clean:
            health = self.cluster.quick_health(settled=settled, reached=self._names_client(case))
        if health is None:
            try:
                health = self.cluster.health()
            except ClusterHung as e:  # the scheduler itself did not answer
                health = Health([str(e)])
        died = getattr(self.cluster, "scheduler_died", lambda: None)() if health.shut_down else None
        if died:
            # Not a shutdown: the scheduler process crashed on what the cell sent it (a cluster started from
            # another env, whose scheduler unpickles the graph): the cell's finding, like a worker it killed.
            cell.outcome, cell.stage = oc.WORKER_DIED, oc.STAGE_CLUSTER_UNPICKLE
            cell.surprise = cell.outcome != cell.expected
            cell.add_detail(died)
            return self.cluster.make_healthy(f"{case.case_id} [{method}] (scheduler died)")
        if health.shut_down:
            # The cell's own doing (client.shutdown()), whatever its compute call made of it: not a
            # finding about pickling. The cluster is replaced (an owned one) or reported.
            cell.outcome = oc.HARNESS_ERROR
            cell.surprise = cell.outcome != cell.expected
            if cell.detail and cell.detail.startswith(CLOSED_CLIENT):
                cell.detail = cell.detail[len(CLOSED_CLIENT):].lstrip("; ") or None  # it did more than that
            cell.add_detail(f"{SHUT_DOWN} (client.shutdown(): its scheduler and workers ended)")
            return self.cluster.make_healthy(f"{case.case_id} [{method}]")
        if busy:
            return self.cluster.make_healthy(f"{case.case_id} [{method}] ({cell.outcome})")
        if health.ok:
            return None
        return self.cluster.make_healthy(f"{case.case_id} [{method}]: {'; '.join(health.problems)}")

    def close(self):
        self.script.close()
        if self.kernel is not None:
            self.kernel_starts = self.kernel.starts
            self.kernel_startup_seconds = self.kernel.startup_seconds
            self.kernel_warning = self.kernel.zygote_note
            self.kernel.close()
            self.kernel = None


def _cluster_versions(cluster) -> dict | None:
    """The cluster's versions, flat (None: the client's own env's). A cluster that does not say is recorded with a
    warning, and its cluster_* conditions then match nothing but ``absent``."""
    try:
        identity = cluster.identity()
    except Exception as e:  # an old or locked-down cluster: say so, and judge the cells all the same
        cluster.warnings.append(f"the cluster's versions could not be read for its cluster_* expectations: "
                                f"{type(e).__name__}: {e}")
        return {}
    return None if identity is None else flat_versions(identity)


def _judge(attempt: Attempt, case: Case, method: str, context: str, expected: str) -> CellResult:
    """The cell's result from what its attempt showed: its answer, or how it hung or died."""
    cell = functools.partial(CellResult.of, case, method, context, expected)
    if attempt.timed_out:
        # where the work had got to when the clock ran out: on the cluster once the graph left, else still
        # being pickled by the client (or, before the compute call, the cell was still being defined)
        stage = oc.STAGE_TASK if attempt.sent else oc.STAGE_CLIENT_PICKLE if attempt.submitted else None
        return cell(oc.TIMEOUT, stage=stage,
                    detail=f"no result within {case.timeout:g}s of compute" if attempt.compute_started
                    else f"cell not defined within {case.timeout + CONNECT_ALLOWANCE:g}s")
    answer = attempt.answer
    if answer is not None:
        outcome, detail, stage = answer["outcome"], answer.get("detail"), answer.get("stage")
        if outcome == oc.TASK_ERROR and _closed_client(answer.get("root_cause")):
            # The client refused to send the graph: no task ran, and nothing was learnt about pickling.
            outcome, detail, stage = oc.HARNESS_ERROR, CLOSED_CLIENT, None
        return cell(outcome, root_cause=answer.get("root_cause"), stage=stage,
                    seconds=answer.get("seconds"),
                    graph_bytes=answer.get("graph_bytes"), samples=answer.get("samples", []),
                    detail=detail)
    # The cell's process (or the kernel) died without an answer. Where had it got to?
    if context == "kernel":
        cause = {"type": "KernelDied", "message": f"the kernel died ({attempt.died})"}
    else:
        cause = {"type": "ProcessExit", "message": f"cell process exited with status {attempt.died}"}
    if attempt.compute_started and not (attempt.submitted or attempt.targets_cluster):
        return cell(oc.RAN_LOCALLY, root_cause=cause, detail="the local computation ended the process")
    if attempt.sent:
        # The graph had left and the client was only waiting for the value: it died receiving it (unpickling
        # what a worker sent, e.g. a function's code from another Python), or, once it had the value, using it.
        # The cell's finding (the object did not survive the trip back), not the harness failing.
        who = "the kernel" if context == "kernel" else "the client process"
        if attempt.received:
            return cell(oc.CLIENT_DIED, root_cause=cause, stage=oc.STAGE_CLIENT_USE,
                        detail=f"{who} died in the case's check() of the value that came back")
        return cell(oc.CLIENT_DIED, root_cause=cause, stage=oc.STAGE_CLIENT_UNPICKLE,
                    detail=f"{who} died receiving the result")
    if attempt.log_path is None:
        detail = "the kernel died"
    else:  # where its output is, if any, is added later
        detail = "cell process died" if has_output(attempt.log_path) else "cell process died without output"
    return cell(oc.HARNESS_ERROR, root_cause=cause, detail=detail)


CLOSED_CLIENT = "the cell closed its client (client.close()): no task ran"


def _closed_client(root_cause: dict | None) -> bool:
    """Whether the cell's failure says its client was closed: ``ClosedClientError`` (distributed 2026.x), or
    the plain ``Exception("Tried sending message after closing. ...")`` of distributed 2024.x."""
    if not root_cause:
        return False
    kind = str(root_cause.get("type", "")).rpartition(".")[2]
    return kind == "ClosedClientError" or (
        kind == "Exception" and str(root_cause.get("message", "")).startswith("Tried sending message after closing"))


# Outcomes after which no task of the cell can still run: its compute call returned (or never reached the cluster).
_SETTLED = frozenset({oc.PASS, oc.WRONG_RESULT, oc.RAN_LOCALLY, oc.NOT_APPLICABLE})


def _ended_cleanly(attempt: Attempt, outcome: str) -> bool:
    """Whether the cell ended as cells usually do: its answer in, no timeout, no death, no harness error. Only a
    cell that did not could have harmed the cluster in a way that the quick check (the scheduler's own
    record) does not see."""
    return (attempt.answer is not None and not attempt.timed_out and attempt.died is None
            and outcome not in (oc.TIMEOUT, oc.WORKER_DIED, oc.HARNESS_ERROR))


def _leaves_workers_busy(attempt: Attempt, outcome: str) -> bool:
    """Whether a task of the cell may still hold a worker, or one died: then the workers are replaced."""
    if attempt.timed_out:
        # A hung task keeps its worker thread busy for good. A hang that never reached the cluster died
        # with the cell.
        return attempt.submitted
    if attempt.answer is not None:
        # a compute call whose own wait ran out left its task running, like a hang
        return outcome == oc.WORKER_DIED or (outcome == oc.TIMEOUT and attempt.submitted)
    return outcome in (oc.HARNESS_ERROR, oc.CLIENT_DIED) and attempt.submitted


def run_order(cases, methods, contexts) -> list[tuple]:
    """The order the cells run in: every case by the methods whose client is dask's default scheduler, then every
    case by the others, each case's cells in both contexts one after the other. A notebook's client is then
    replaced once a run instead of twice a case (picklematrix.run.inkernel: a client cannot be the default
    scheduler for one cell and not for the next; two clients at once would change what
    ``dask.compute(x, client=c)`` does). Cells are independent of each other (each script cell is a process
    of its own; each kernel cell a fresh namespace), so the order changes no outcome."""
    kinds = [[m for m in methods if METHODS[m].default_client], [m for m in methods if not METHODS[m].default_client]]
    return [(case, method, context) for group in kinds for case in cases for method in group for context in contexts]


def run_one(runner: CellRunner, case, method: str, context: str, **around) -> CellResult:
    """``runner.run``, a harness failure judged as the cell's harness error: one cell's must not lose the others."""
    try:
        return runner.run(case, method, context, **around)
    except Exception as e:
        return CellResult.of(case, method, context, runner.expected(case, method, context), oc.HARNESS_ERROR,
                             root_cause=oc.describe(e), detail="harness failure while running this cell")


def run_corpus(cases, methods, contexts=("script",), *, cluster, samples: int | dict = 1,
               progress: bool | Progress = True, on_cell=None, kernel=None, skip=frozenset(),
               queue=None) -> RunResult:
    """Run every case x method x context on ``cluster``; ``on_cell(cell)`` is called after each. ``kernel``: a
    KernelSession launched already, for the kernel cells (closed with the run). ``progress``: whether to show
    progress, or the Progress to count the cells on (shared with another lane). ``skip``: the cells not to run,
    as (family, case, method, context). ``queue``: a picklematrix.run.lanes.ScriptQueue the script cells go
    through; those the kernel lane takes over are not run here (nor returned: the lane hands them on)."""
    runner = CellRunner(cluster, samples=samples, kernel=kernel)
    grid = [(case, method, context) for case, method, context in run_order(cases, methods, contexts)
            if (case.family, case.case_id, method, context) not in skip]
    # For each cell, the next cell that runs after it (the cells that do not apply are judged without running:
    # a script cell's process is prepared for the one after them), and the method of the next kernel cell
    # (whose notebook a kernel cell prepares).
    # ``ahead``: the next one after that (a script cell's process is forked for it ahead).
    following, next_kernel, ahead = [None] * len(grid), [None] * len(grid), [None] * len(grid)
    upcoming = upcoming_kernel = None
    for i in range(len(grid) - 1, -1, -1):
        following[i], next_kernel[i] = upcoming, upcoming_kernel
        case, method, context = grid[i]
        if runner._not_applicable(case, context) is None:
            upcoming = i
            if context == "kernel":
                upcoming_kernel = method
    for i in range(len(grid)):
        if following[i] is not None:
            ahead[i] = grid[following[following[i]]] if following[following[i]] is not None else None
    following = [None if j is None else grid[j] for j in following]
    if queue is not None:
        queue.fill(cell for cell in grid if cell[2] == "script" and runner._not_applicable(cell[0], "script") is None)
    bar = progress if isinstance(progress, Progress) else Progress(len(grid), enabled=progress)
    cells, stopped, ran = [], None, []
    try:
        for i, (case, method, context) in enumerate(grid):
            around = dict(following=following[i], next_kernel=next_kernel[i], ahead=ahead[i])
            if queue is not None and context == "script" and runner._not_applicable(case, context) is None:
                taken = queue.take()
                if taken is None:
                    continue  # the lane took it over, and every later one
                if taken is not grid[i]:
                    raise RuntimeError(f"the script cells' queue is out of order at {case.case_id} [{method}]")
                # the next two are the run's (the lane never takes them): their processes are forked ahead
                around.update(following=queue.peek(0), ahead=queue.peek(1))
            ran.append(grid[i])
            cell = run_one(runner, case, method, context, **around)
            cells.append(cell)
            bar.update(cell)
            if on_cell is not None:
                on_cell(cell)
            if getattr(cluster, "lost", None):
                # a cluster the run may not restart (--scheduler) is broken: later cells would only measure that
                stopped = f"{cluster.lost} (after {len(cells)} of {len(grid)} cells)"
                break
    finally:
        if queue is not None:
            queue.close()
        if bar is not progress:
            bar.close()
        runner.close()
    # the record lists the cells case by case, whatever order they ran in
    position = {id(case): i for i, case in enumerate(cases)}
    order = [(position[id(case)], methods.index(method), contexts.index(context)) for case, method, context in ran]
    cells = [cell for _, cell in sorted(zip(order, cells), key=lambda pair: pair[0])]
    cluster_info = cluster.describe()
    if runner.kernel_starts:
        cluster_info["kernel_starts"] = runner.kernel_starts
        cluster_info["kernel_startup_seconds"] = runner.kernel_startup_seconds
    if runner.kernel_warning:
        cluster_info["warnings"] = [*cluster_info.get("warnings", []), runner.kernel_warning]
    return RunResult(env=runner.env, cells=cells, cluster=cluster_info, stopped=stopped)
