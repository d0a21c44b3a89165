"""A cluster the run starts here (OwnedCluster): a ``LocalCluster`` of worker processes, replaced when a cell breaks it.

A cluster we start is a ``LocalCluster`` with worker processes (nannies),
bound to 127.0.0.1, dashboard off, started once per run; its workers fork
from the harness's preloaded server (picklematrix.processes). Between cells the
harness checks it is idle and whole; after a cell that timed out or killed a
worker, the workers are replaced: a running task cannot be interrupted, and
a worker thread stuck in a hung task would make every later cell time out.

A cluster we did not start is never replaced (picklematrix.cluster.existing).
"""

from __future__ import annotations

import os
import signal
import time

from picklematrix.cluster.base import (
    SCHEDULER_WITHIN,
    SHUT_DOWN,
    BaseCluster,
    ClusterHung,
    Health,
    scheduler_counts,
    within,
)
from picklematrix.cluster.limits import START_WITHIN_VAR, start_within, worker_memory_limit


# How long the quick check waits for the scheduler's event loop to run a no-op (it is idle between cells: well
# under a millisecond); longer, and the full check asks what is wrong.
LOOP_WITHIN = 0.5


def _watch_tasks(scheduler):
    """Add to ``scheduler`` (a Scheduler in this process, called on its loop) a plugin that counts the tasks
    that stop processing without finishing: released, or taken back, while a worker ran them. A worker thread
    cannot be stopped, so such a task may still run there after its cell has ended (a failed graph's other
    branches, a future the cell dropped). A cell that ends with none leaves no thread of it running, and the
    quick check need not ask the workers (:meth:`OwnedCluster.quick_health`)."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    class TaskWatch(SchedulerPlugin):
        name = "picklematrix-task-watch"

        def __init__(self):
            self.count = 0

        def transition(self, key, start, finish, *args, **kwargs):
            if start == "processing" and finish not in ("memory", "erred"):
                self.count += 1

    watch = TaskWatch()
    scheduler.add_plugin(watch, name=TaskWatch.name)
    return watch


def _kill_worker_processes(local_cluster) -> None:
    """SIGKILL every worker process of ``local_cluster``, read off its nannies (no event loop needed)."""
    for nanny in list(getattr(local_cluster, "workers", {}).values()):
        try:
            pid = nanny.pid
        except Exception:
            pid = None
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _worker_process(nanny) -> str:
    try:
        pid = nanny.pid
    except Exception:
        pid = None
    if not pid:
        return ", no worker process"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f", worker pid {pid} gone"
    except OSError:
        pass
    return f", worker pid {pid} exists"


class OwnedCluster(BaseCluster):
    """A ``LocalCluster`` this process starts: stuck workers are killed, and when their nannies cannot
    bring them back the whole cluster is replaced."""

    owned = True
    same_env = True

    def __init__(self, n_workers: int = 2, *, fork_workers: bool = True):
        """``fork_workers``: workers fork from the preloaded server (picklematrix.processes). False
        leaves distributed's own setting (spawn, unless this process set another): cheaper for a
        cluster that starts its workers once and never replaces one, as there is then no server to
        start first."""
        super().__init__(n_workers)
        self.fork_workers = fork_workers
        self.local_cluster = None
        self.memory_limit = worker_memory_limit(n_workers)
        # What the scheduler saw of tasks that stopped processing without finishing (see _watch_tasks), and
        # how many of them the last health check that found the cluster whole had seen.
        self.watch = None
        self.watched = 0

    @property
    def address(self) -> str:
        return self.local_cluster.scheduler_address

    def start(self) -> "OwnedCluster":
        import dask
        from distributed import Client, LocalCluster

        from picklematrix.processes import use_for_workers

        # distributed's SpecCluster closes a nanny for good when no worker of
        # its name is back within lost-worker-timeout (15 s) of a worker
        # being lost; hung cells killed in quick succession can catch a nanny
        # mid-restart then. This harness judges worker health itself.
        # (Set for the process: the check runs later, on the cluster's loop.)
        dask.config.set({"distributed.deploy.lost-worker-timeout": "1 day"})
        # Workers fork from the harness's preloaded server (see picklematrix.processes):
        # replacing a killed one costs a fork, not a new interpreter importing distributed.
        if self.fork_workers:
            use_for_workers()
        # Nothing reads distributed's statistical profiles here (no
        # dashboard); sampling every thread every 10 ms in the scheduler,
        # nannies and workers cost about 7% of a run's CPU. (For the process
        # too: a nanny hands a replacement worker the config of that moment.)
        dask.config.set({"distributed.worker.profile.enabled": False})
        # Nor does anything here need the event loop's health measured every 20 ms, or memory
        # use every 100 ms, in each scheduler, nanny and worker: an idle cluster of ours cost
        # 0.06 cores in those timers, 0.017 at one second each.
        dask.config.set({"distributed.admin.tick.interval": "1s",
                         "distributed.worker.memory.monitor-interval": "1s"})
        with dask.config.set(
            {
                # A task that kills its worker is reported at once as
                # worker-died rather than retried on every other worker.
                "distributed.scheduler.allowed-failures": 0,
                "distributed.scheduler.work-stealing": False,
                "distributed.admin.large-graph-warning-threshold": "1GB",
            }
        ):
            # No workers yet: they are added below, and waited for with a deadline.
            self.local_cluster = within(start_within(), "starting the scheduler", LocalCluster,
                n_workers=0,
                memory_limit=self.memory_limit,
                # one thread each: a hung task blocks its whole worker, which the health check then sees
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # The scheduler's HTTP server (health, metrics) runs even
                # without a dashboard: keep it on loopback, on a free port.
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                scheduler_port=0,
                silence_logs=50,
            )
        # Connected before the workers are asked for: a Client of a cluster waits for the cluster's
        # pending changes, a worker that never starts included.
        self.client = within(start_within(), "connecting to the new scheduler", Client, self.local_cluster,
                             set_as_default=False)
        self.watch, self.watched = self._on_loop(_watch_tasks, self.local_cluster.scheduler), 0
        self.local_cluster.scale(self.n_workers)
        problem = self._wait_for_workers(time.monotonic() + start_within())
        if problem:
            report = self._nanny_report()
            self.close(timeout=2)  # nothing of it is worth waiting for
            raise ClusterHung(f"{problem}{report}")
        return self

    def _wait_for_workers(self, deadline: float) -> str | None:
        """Wait until every worker has connected; what went wrong if not (a nanny failed, the deadline).

        Read in this process, where the scheduler and the nannies live: no message that a blocked
        loop could hold up."""
        while True:
            if len(self.local_cluster.scheduler.workers) >= self.n_workers:
                return None
            failed = [name for name, nanny in list(self.local_cluster.workers.items())
                      if getattr(nanny.status, "name", str(nanny.status)) in ("failed", "closed")]
            if failed:
                return f"the nanny of worker {failed[0]} failed to start its worker process"
            if time.monotonic() > deadline:
                return (f"{len(self.local_cluster.scheduler.workers)} of {self.n_workers} workers started "
                        f"within {start_within():g}s ({START_WITHIN_VAR} sets the deadline)")
            time.sleep(0.02)

    def _scheduler_now(self) -> dict:
        return scheduler_counts(self.local_cluster.scheduler)

    def _worker_pids(self, addresses) -> dict:
        """{worker address: pid}, read off the scheduler in this process."""
        known = {a: ws.pid for a, ws in list(self.local_cluster.scheduler.workers.items())}
        return {a: known[a] for a in addresses if known.get(a)}

    def _on_loop(self, fn, *args, seconds: float = SCHEDULER_WITHIN):
        """``fn(*args)`` run on the scheduler's event loop (this process's), waited for at most ``seconds``."""
        import asyncio

        async def call():
            return fn(*args)

        loop = self.local_cluster.loop.asyncio_loop
        future = asyncio.run_coroutine_threadsafe(call(), loop)
        try:
            return future.result(seconds)
        except Exception:
            future.cancel()
            raise

    def shut_down(self) -> bool:
        """Whether the scheduler has closed (a cell called ``client.shutdown()``): read in this process."""
        scheduler = self.local_cluster.scheduler
        return getattr(scheduler.status, "name", str(scheduler.status)) in ("closing", "closed", "failed",
                                                                             "closing_gracefully")

    def health(self, *, grace: float = 3.0, gone: tuple = ()) -> Health:
        if self.shut_down():
            # nothing to wait for: no scheduler will take the workers back
            return Health([SHUT_DOWN], shut_down=True)
        deadline = time.monotonic() + grace
        # The scheduler is in this process: wait for the cell's tasks to clear there (a cell's
        # process releases them as it closes its client, which may still be going on), checking
        # often and cheaply, before asking the workers (a round trip) whether any still runs one.
        while time.monotonic() < deadline:
            now = scheduler_counts(self.local_cluster.scheduler)
            if not (now["tasks"] or now["processing"]):
                break
            time.sleep(0.002)
        health = self._health_by(deadline, gone)
        if health.ok and self.watch is not None:
            # every worker answered idle: what the scheduler saw stop processing until now is over
            self.watched = self.watch.count
        return health

    def quick_health(self, *, settled: bool, reached: bool = True, grace: float = 3.0) -> Health | None:
        """The check after a cell that ended cleanly, read in this process (the scheduler lives here): no task
        of the cell left on the scheduler (waiting up to ``grace`` for its client's releases), no task that
        stopped processing without finishing since the last check (its worker thread may still run it), every
        worker connected and running, and, when the cell may have ``reached`` the scheduler's event loop (its
        code named a client: ``client.run_on_scheduler``), that loop answering. None when any of it is not so:
        the full check (:meth:`health`) decides then. ``settled`` is not needed here: the scheduler's own
        record of each task says whether one can still be running."""
        if self.shut_down():
            return Health([SHUT_DOWN], shut_down=True)
        scheduler = self.local_cluster.scheduler
        deadline = time.monotonic() + grace
        while True:
            now = scheduler_counts(scheduler)
            if not (now["tasks"] or now["processing"]):
                break
            if time.monotonic() > deadline:
                return None
            time.sleep(0.002)
        if self.watch is None or self.watch.count != self.watched:
            return None
        workers = list(scheduler.workers.values())
        if len(workers) < self.n_workers or any(getattr(ws.status, "name", ws.status) != "running"
                                                 for ws in workers):
            return None
        if reached:
            try:
                # the loop that runs the scheduler (and the harness's client) still turns: a cell that blocked
                # it would leave the next cell waiting on it
                self._on_loop(lambda: None, seconds=LOOP_WITHIN)
            except Exception:
                return None
        return Health()

    def make_healthy(self, reason: str) -> str | None:
        """Replace the stuck workers; if that does not make the cluster whole, the whole cluster.

        Returns what was done, for the cell's detail, when it is more than replacing a worker whose
        task hung: a worker that did not answer, or the whole cluster."""
        self.restarts += 1
        killed = []
        try:
            if self.shut_down():
                problems = SHUT_DOWN
            else:
                health, killed = self._replace_stuck_workers()
                if health.ok:
                    return "; ".join(killed) or None
                # Starting a new cluster takes less than a graceful restart that
                # may itself wait on a wedged nanny: go straight there.
                problems = "; ".join(health.problems) + self._nanny_report()
        except ClusterHung as e:
            # The scheduler's loop (the harness's client's too) is blocked: nothing of this cluster
            # will close gracefully.
            message = self._warn(f"replaced the whole local cluster after {reason} ({e})")
            self.close(timeout=1)
            self.start()
            return "; ".join([*killed, message])
        except Exception as e:
            problems = f"restart failed: {type(e).__name__}: {e}"
        message = self._warn(f"replaced the whole local cluster after {reason} ({problems})")
        self.close()
        self.start()
        return "; ".join([*killed, message])

    @property
    def _client_loop(self) -> str:
        # LocalCluster runs its scheduler on the loop its Client uses, in this process
        return f"the scheduler's event loop at {self.address} (the harness's client shares it)"

    def _nanny_report(self) -> str:
        """What the nannies say about themselves (for the warning).

        With each worker's pid and whether that process still exists: a nanny
        "running" whose worker is gone has not noticed its death; one whose
        worker exists but is not connected has a worker stuck starting.
        """
        try:
            nannies = dict(self.local_cluster.workers)
            if not nannies:  # SpecCluster lists a nanny once it has started its worker
                return " (no nanny has started its worker yet)"
            return " (nannies: " + ", ".join(
                f"{name} {getattr(n.status, 'name', n.status)}"
                f"{'' if getattr(n, 'worker_address', None) else ' without a worker'}{_worker_process(n)}"
                for name, n in nannies.items()) + ")"
        except Exception as e:
            return f" (nannies unknown: {type(e).__name__})"

    def close(self, timeout: float | None = None):
        """Close the cluster: gracefully within ``timeout`` seconds (default 20), then its worker processes
        are killed."""
        if self.local_cluster is not None and timeout is None and self.shut_down():
            timeout = 2
        super().close(timeout=None if timeout is None else min(timeout, 10))
        if self.local_cluster is not None:
            # A cluster a cell shut down has nothing left to close gracefully, yet its close waits out
            # the whole timeout (20 s, seen with distributed 2026.8): a short one, then the kill below.
            if timeout is None:
                timeout = 2 if self.shut_down() else 20
            try:
                within(timeout + 2, "closing the local cluster", self.local_cluster.close, timeout=timeout)
            except Exception:
                pass
            # Whatever did not close (a worker stopped or stuck, a loop blocked) ends here: its processes
            # are ours, and a new cluster may be about to start beside them.
            _kill_worker_processes(self.local_cluster)
            # distributed closes every cluster still open at exit, waiting up to 20 s on one that
            # would not close here (one a cell shut down): ours is done with.
            try:
                type(self.local_cluster)._instances.discard(self.local_cluster)
            except Exception:
                pass
        self.local_cluster = self.client = self.watch = None


