"""What every cluster a run uses offers: a client, and the health check between cells (BaseCluster).

Between cells the harness asks whether the cluster is idle and whole: no task
of the finished cell left on the scheduler or running in a worker thread, every
worker connected. picklematrix.cluster says what each kind of cluster may do
when it is not.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import dataclass, field


@dataclass
class Health:
    """The result of a health check: what is wrong, if anything."""

    problems: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# How long a health check waits for the workers' answer before asking again (a healthy answer takes
# milliseconds; a worker that has just died, but is still listed, would not answer for 30 s).
ANSWER_WITHIN = 2.0


def scheduler_state():
    """A function giving the scheduler's counts, to call in its process or send there (``run_on_scheduler``)."""

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


class BaseCluster:
    """What a run needs of any cluster: a client, the health check between cells, and a record of
    what was done to it. Subclasses say how it starts and what :meth:`make_healthy` may do."""

    owned = False

    def __init__(self, n_workers: int):
        self.n_workers = n_workers
        self.client = None
        self.restarts = 0
        self.warnings: list[str] = []

    @property
    def address(self) -> str:
        raise NotImplementedError

    def start(self) -> "BaseCluster":
        raise NotImplementedError

    def make_healthy(self, reason: str) -> str | None:
        """Called after a cell left the cluster unhealthy (``reason`` says which); returns a warning, if any."""
        raise NotImplementedError

    def _scheduler_now(self) -> dict:
        # nested functions pickle by value: the cluster need not have picklematrix
        return self.client.run_on_scheduler(scheduler_state())

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
        state = self._scheduler_now()
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
        return self._health_by(time.monotonic() + grace, gone)

    def _health_by(self, deadline: float, gone: tuple) -> Health:
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
                return Health(problems)
            time.sleep(0.05)

    def _replace_stuck_workers(self) -> Health:
        """Kill the workers still running a task of a finished cell, then wait for their nannies' new ones.

        A worker thread stuck in a hung task cannot be interrupted, and a graceful restart waits for it
        (tens of seconds). Killed, its nanny starts a fresh worker in a second or two. Only for clusters
        picklematrix started on this machine: their worker pids are ours to kill.
        """
        busy = self.client.run(_busy_threads())
        stuck = tuple(address for address, threads in busy.items() if threads)
        if stuck:
            for pid in self.client.run(os.getpid, workers=list(stuck)).values():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        # A nanny brings a killed worker back in about a second; ten is plenty.
        return self.health(grace=10 if stuck else 3, gone=stuck)

    def _warn(self, message: str) -> str:
        self.warnings.append(message)
        return message

    def describe(self) -> dict:
        """The run's record of this cluster (the ``cluster`` block of the JSON)."""
        return {"address": self.address, "owned": self.owned, "workers": self.n_workers,
                "restarts": self.restarts, "warnings": list(self.warnings)}

    def close(self):
        if self.client is not None:
            try:
                self.client.close(timeout=10)
            except Exception:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
