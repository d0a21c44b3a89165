"""The distributed cluster a run computes on: one we start, or a user's.

A cluster we start is a ``LocalCluster`` with worker processes (nannies),
bound to 127.0.0.1, dashboard off, started once per run; its workers fork
from the harness's preloaded server (picklematrix.processes). Between cells the
harness checks it is idle and whole; after a cell that timed out or killed a
worker, the workers are replaced: a running task cannot be interrupted, and
a worker thread stuck in a hung task would make every later cell time out.

A cluster we did not start (``--scheduler ADDRESS``) is never restarted: its
problems are reported instead.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


class _Unhealthy(Exception):
    pass


@dataclass
class Health:
    workers: int
    tasks: int
    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# How long a health check waits for the workers' answer before asking again (a healthy answer takes
# milliseconds; a worker that has just died, but is still listed, would not answer for 30 s).
ANSWER_WITHIN = 2.0


def _scheduler_state():
    def state(dask_scheduler=None):
        return {
            "workers": len(dask_scheduler.workers),
            "addresses": sorted(dask_scheduler.workers),
            "tasks": len(dask_scheduler.tasks),
            # list(): copied in one step, without the scheduler's thread changing the dict midway
            "processing": sum(len(ws.processing) for ws in list(dask_scheduler.workers.values())),
        }

    return state


def _busy_threads():
    def busy(dask_worker=None):
        # A released task whose thread is still running (a hung cell) shows
        # here, not on the scheduler, which has already forgotten it.
        return len(dask_worker.active_threads)

    return busy


def _worker_process(nanny) -> str:
    import os

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


class Cluster:
    def __init__(self, address: str | None = None, *, n_workers: int = 2, threads_per_worker: int = 1,
                 restartable: bool = False, fork_workers: bool = True):
        """``fork_workers``: workers of a cluster we start fork from the preloaded server
        (picklematrix.processes). False leaves distributed's own setting (spawn, unless this process
        set another): cheaper for a cluster that starts its workers once and never replaces one, as
        there is then no server to start first."""
        self.requested_address = address
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.owned = address is None
        # An external cluster that picklematrix itself started (``python -m
        # picklematrix cluster``): its workers may be restarted, the cluster
        # itself is not replaced.
        self.restartable = self.owned or restartable
        self.fork_workers = fork_workers
        self.local_cluster = None
        self.client = None
        self.restarts = 0
        self.warnings: list[str] = []

    @property
    def address(self) -> str:
        return self.local_cluster.scheduler_address if self.owned else self.requested_address

    def start(self) -> "Cluster":
        import dask
        from distributed import Client, LocalCluster

        from .processes import use_for_workers

        if self.owned:
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
                self.local_cluster = LocalCluster(
                    n_workers=self.n_workers,
                    threads_per_worker=self.threads_per_worker,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    # The scheduler's HTTP server (health, metrics) runs even
                    # without a dashboard: keep it on loopback, on a free port.
                    scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                    scheduler_port=0,
                    silence_logs=50,
                )
            self.client = Client(self.local_cluster, set_as_default=False)
        else:
            self.client = Client(self.requested_address, set_as_default=False, timeout=30)
            self.n_workers = len(self.client.scheduler_info().get("workers", {}))
        return self

    def serve(self, state_file: str) -> None:
        """Run this (owned) cluster until SIGTERM/SIGINT, its address in ``state_file``."""
        import json
        import os
        import signal
        import threading

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        tmp = state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"address": self.address, "pid": os.getpid(), "workers": self.n_workers}, f)
        os.replace(tmp, state_file)
        try:
            while not stop.wait(0.5):
                pass
        finally:
            try:
                os.unlink(state_file)
            except OSError:
                pass

    def state(self, gone: tuple = (), answer_within: float = ANSWER_WITHIN) -> dict:
        """The scheduler's view, and how many worker threads still run a task.

        ``gone``: workers just killed. They are not asked: the scheduler may
        not have dropped them yet, and a message to a dead worker waits out
        distributed's connect timeout (30 s) before failing. Without ``gone``
        the scheduler picks the workers itself, when it handles the request:
        a list read here a moment earlier could hold a worker that has died
        since, with the same wait. Still, the scheduler itself may not have
        noticed a death yet: if the workers have not all answered within
        ``answer_within`` seconds, ``state["unanswered"]`` says so.
        """
        if self.owned:
            state = _scheduler_state()(self.local_cluster.scheduler)
        else:
            # nested functions pickle by value: the cluster need not have picklematrix
            state = self.client.run_on_scheduler(_scheduler_state())
        try:
            if gone:
                alive = [a for a in state["addresses"] if a not in gone]
                busy = self._ask_workers(alive, answer_within) if alive else {}
            else:
                busy = self._ask_workers(None, answer_within)
            state["executing"] = sum(busy.values())
        except (TimeoutError, asyncio.TimeoutError):  # distinct before Python 3.11
            state["executing"] = 0
            state["unanswered"] = True
        except Exception:
            state["executing"] = 0
        return state

    def _ask_workers(self, workers, within: float) -> dict:
        """{worker: threads running a task}, or ``TimeoutError`` after ``within`` seconds.

        A worker that died a moment ago may still be listed by the scheduler, and a message to it
        waits out distributed's connect timeout (30 s) before failing: the scheduler drops it
        meanwhile, and the caller asks again.
        """
        return self.client.sync(self.client._run, _busy_threads(), workers=workers, callback_timeout=within)

    def health(self, *, grace: float = 3.0, gone: tuple = ()) -> Health:
        """Idle and whole? Waits up to ``grace`` seconds for a just-ended cell's tasks to clear.

        ``gone``: addresses of workers that were just killed; until the scheduler
        has dropped them, the cluster is not whole yet.
        """
        deadline = time.monotonic() + grace
        if self.owned:
            # The scheduler is in this process: wait for the cell's tasks to clear there (a cell's
            # process releases them as it closes its client, which may still be going on), checking
            # often and cheaply, before asking the workers (a round trip) whether any still runs one.
            read = _scheduler_state()
            while time.monotonic() < deadline:
                now = read(self.local_cluster.scheduler)
                if not (now["tasks"] or now["processing"]):
                    break
                time.sleep(0.002)
        while True:
            state = self.state(gone, answer_within=min(ANSWER_WITHIN, max(0.5, deadline - time.monotonic())))
            problems = []
            if state.get("unanswered"):
                problems.append("a worker did not answer")
            lingering = set(gone) & set(state["addresses"])
            if state["workers"] - len(lingering) < self.n_workers:
                problems.append(f"{state['workers'] - len(lingering)} of {self.n_workers} workers connected")
            if state["tasks"]:
                problems.append(f"{state['tasks']} tasks still on the scheduler")
            if state["processing"] or state["executing"]:
                problems.append("workers still executing tasks of a finished cell")
            if not problems or time.monotonic() > deadline:
                return Health(state["workers"], state["tasks"], problems)
            time.sleep(0.05)

    def make_healthy(self, reason: str) -> str | None:
        """Replace the workers of a cluster we own; report on one we don't. Returns a warning, if any."""
        if not self.restartable:
            health = self.health(grace=0.5)
            if health.ok:
                return None
            msg = f"cluster at {self.address} may be unhealthy after {reason}: {'; '.join(health.problems)}"
            self.warnings.append(msg)
            return msg
        self.restarts += 1
        problems = ""
        try:
            # A worker thread stuck in a hung task cannot be interrupted, and a
            # graceful restart waits for it (tens of seconds). Kill just the
            # stuck workers' processes: their nannies start fresh ones in a
            # second or two. (A restartable cluster is one picklematrix
            # started on this machine, so its worker pids are ours to kill.)
            busy = self.client.run(_busy_threads())
            stuck = [address for address, threads in busy.items() if threads]
            if stuck:
                import os
                import signal

                for pid in self.client.run(os.getpid, workers=stuck).values():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            # A nanny brings a killed worker back in about a second; ten is plenty.
            health = self.health(grace=10 if stuck else 3, gone=tuple(stuck))
            if health.ok:
                return None
            if self.owned:
                # Starting a new cluster takes less than a graceful restart that
                # may itself wait on a wedged nanny: go straight there.
                raise _Unhealthy("; ".join(health.problems) + self._nanny_report())
            self.client.restart(timeout=30, wait_for_workers=True)
            health = self.health(grace=10)
            if health.ok:
                return None
            problems = "; ".join(health.problems)
        except _Unhealthy as e:
            problems = str(e)
        except Exception as e:
            problems = f"restart failed: {type(e).__name__}: {e}"
        if not self.owned:
            # Nothing more we may do to it; later cells report instead of
            # paying for another failed restart each.
            self.restartable = False
            msg = f"workers of {self.address} still unhealthy after a restart ({reason}): {problems}"
            self.warnings.append(msg)
            return msg
        # The nannies could not bring the workers back: start over.
        msg = f"replaced the whole local cluster after {reason} ({problems})"
        self.warnings.append(msg)
        self.close()
        self.local_cluster = self.client = None
        self.start()
        return msg

    def _nanny_report(self) -> str:
        """What the nannies of a cluster we own say about themselves (for the warning).

        With each worker's pid and whether that process still exists: a nanny
        "running" whose worker is gone has not noticed its death; one whose
        worker exists but is not connected has a worker stuck starting.
        """
        try:
            nannies = dict(self.local_cluster.workers)
            return " (nannies: " + ", ".join(
                f"{name} {getattr(n.status, 'name', n.status)}"
                f"{'' if getattr(n, 'worker_address', None) else ' without a worker'}{_worker_process(n)}"
                for name, n in nannies.items()) + ")"
        except Exception as e:
            return f" (nannies unknown: {type(e).__name__})"

    def worker_versions(self) -> dict:
        """distributed's own version report for scheduler and workers."""
        try:
            return self.client.get_versions(check=False)
        except Exception as e:  # an old or locked-down cluster: say so, don't fail the run
            return {"error": f"{type(e).__name__}: {e}"}

    def close(self):
        if self.client is not None:
            try:
                self.client.close(timeout=10)
            except Exception:
                pass
        if self.local_cluster is not None:
            try:
                self.local_cluster.close(timeout=20)
            except Exception:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
