"""What every cluster a run uses offers: a client, and the health check between cells (BaseCluster).

Between cells the harness asks whether the cluster is idle and whole: no task
of the finished cell left on the scheduler or running in a worker thread, every
worker connected. Each kind of cluster says what it may do when it is not
(picklematrix.cluster.local, .existing, .spawned). The check asks only what distributed answers over its own
RPC (the scheduler's processing and who_has, each worker's call_stack): no function travels, so a cluster of
another Python, without picklematrix, is checked like one of ours.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from dataclasses import dataclass, field

from picklematrix.versions import PACKAGES


@dataclass
class Health:
    """The result of a health check: what is wrong, if anything."""

    problems: list = field(default_factory=list)
    # the scheduler has closed: a cell shut the cluster down (client.shutdown()), nothing to wait for
    shut_down: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


class ClusterHung(Exception):
    """A wait on the cluster ran out: the message names what did not answer (the scheduler, a worker)."""


def within(seconds: float, what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, waited for at most ``seconds``; else :class:`ClusterHung` naming ``what``.

    The call runs on a daemon thread of its own: distributed's own timeouts run on an event loop,
    and a loop that a task (or a cell) blocked never fires them, so only a wait outside it ends.
    A call that never returns leaves its thread behind, blocking nothing: the caller moves on
    (kills a worker, replaces the cluster).
    """
    box = {}
    done = threading.Event()

    def call():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=call, daemon=True, name=f"picklematrix wait: {what}").start()
    if not done.wait(seconds):
        raise ClusterHung(f"{what} did not answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


# How long a health check waits for the workers' answer before asking again (a healthy answer takes
# milliseconds; a worker that has just died, but is still listed, would not answer for 30 s).
ANSWER_WITHIN = 2.0
# How long the quick check after a clean cell waits for the scheduler to drop the cell's tasks (its client
# releases them as its process ends) before leaving the question to the full check.
QUICK_GRACE = 0.25
# How long the scheduler gets to answer a question (its counts, worker pids): milliseconds when well.
SCHEDULER_WITHIN = 5.0
# What a cell that shut the cluster down (client.shutdown()) is told, in its detail.
SHUT_DOWN = "the cell shut the cluster down"
# What a worker that did not answer is, in a cell's detail and the cluster's warnings.
UNANSWERING = "did not answer within {:g}s: its event loop is blocked or its process stopped"


def scheduler_counts(scheduler) -> dict:
    """The counts of a ``Scheduler`` object this process holds (a cluster it started): read in place."""
    return {
        "workers": len(scheduler.workers),
        "addresses": sorted(scheduler.workers),
        "tasks": len(scheduler.tasks),
        # list(): copied in one step, without the scheduler's thread changing the dict midway
        "processing": sum(len(ws.processing) for ws in list(scheduler.workers.values())),
    }


def _worker_pid_map(dask_scheduler=None):
    # Sent to the scheduler by reference (``run_on_scheduler``): only to a cluster that has picklematrix
    # (BaseCluster.picklematrix_on_cluster). distributed's RPC tells no worker's pid.
    return {a: ws.pid for a, ws in dask_scheduler.workers.items()}


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

    def shut_down(self) -> bool:
        """Whether a cell shut the cluster down (its scheduler closed). Known only of a cluster we own."""
        return False

    def make_healthy(self, reason: str) -> str | None:
        """Called after a cell left the cluster unhealthy (``reason`` says which); returns a warning, if any."""
        raise NotImplementedError

    # Whether picklematrix is importable on the scheduler (a cluster started from a matrix env): only then is a
    # function of ours sent there, by reference, and only to learn the workers' pids, which distributed's RPC
    # does not tell, for a cluster whose worker processes are ours to kill. Everything else a health check asks
    # is what distributed answers over its own RPC: no code travels, so a cluster of another Python minor
    # version, without picklematrix, is checked as well (a function shipped by value, code object and all,
    # fails there: "SystemError: no locals when deleting ..." from a 3.13 client to a 3.11 scheduler).
    picklematrix_on_cluster = False

    def _scheduler_now(self) -> dict:
        """The scheduler's view over its RPC: its workers and the tasks it holds or has them process."""
        scheduler = self.client.scheduler

        async def ask():
            return await asyncio.gather(scheduler.processing(), scheduler.who_has())

        processing, who_has = within(SCHEDULER_WITHIN, f"the scheduler at {self.address}", self.client.sync, ask)
        return {"workers": len(processing), "addresses": sorted(processing), "tasks": len(who_has),
                "processing": sum(len(keys) for keys in processing.values())}

    def _worker_pids(self, addresses) -> dict:
        """{worker address: pid}, as the workers told the scheduler when they connected (asking a
        worker itself needs its event loop, which may be what hangs). Empty for a cluster without
        picklematrix: its workers are not ours to kill."""
        if not self.picklematrix_on_cluster:
            return {}
        known = within(SCHEDULER_WITHIN, f"the scheduler at {self.address}", self.client.run_on_scheduler,
                       _worker_pid_map)
        return {a: known[a] for a in addresses if known.get(a)}

    def memory_kills(self, since: float) -> list:
        """Workers their nanny restarted for exceeding the memory limit since ``since`` (``time.time()``):
        one line each, naming the worker and the limit."""
        try:
            events = within(SCHEDULER_WITHIN, f"the scheduler at {self.address}",
                            self.client.get_events, "worker-restart-memory")
        except Exception:
            return []
        return [self._memory_kill_text(msg) for t, msg in events if t >= since and isinstance(msg, dict)]

    def _memory_kill_text(self, msg: dict) -> str:
        from dask.utils import format_bytes

        limit = self.memory_limit
        rss = msg.get("rss")
        return (f"worker {msg.get('worker')} (pid {msg.get('pid')}) exceeded its memory limit"
                f"{f' of {format_bytes(limit)}' if limit else ''}"
                f"{f' (using {format_bytes(rss)})' if rss else ''}; its nanny restarted it")

    def state(self, gone: tuple = (), answer_within: float = ANSWER_WITHIN) -> dict:
        """The scheduler's view, and how many worker threads still run a task.

        ``gone``: workers just killed. They are not asked: the scheduler may not have dropped
        them yet, and a message to a dead worker waits out distributed's connect timeout (30 s).
        Each other worker listed gets ``answer_within`` seconds: ``state["busy"]`` holds each
        one's busy threads, ``state["unanswered"]`` those that did not answer in time (dead
        but not yet noticed by the scheduler, or its event loop blocked, or its process stopped).
        """
        state = self._scheduler_now()
        alive = [a for a in state["addresses"] if a not in gone]
        answers = self._ask_workers(alive, answer_within) if alive else {}
        state["busy"] = answers
        state["executing"] = sum(n for n in answers.values() if n)
        state["unanswered"] = sorted(a for a, n in answers.items() if n is None)
        state["answer_within"] = answer_within
        return state

    def _ask_workers(self, workers, seconds: float) -> dict:
        """{worker: threads running a task, or None if it did not answer within ``seconds``}.

        Each worker is asked on its own, so one that does not answer (dead but still listed, its
        event loop blocked, its process stopped) is named and does not hide the others' answers.
        A message to a worker that died a moment ago waits out distributed's connect timeout
        (30 s): the scheduler drops it meanwhile, and the caller asks again.
        """
        scheduler = self.client.scheduler

        async def ask(address):
            # A worker's "call_stack" handler answers with the stack of each task a thread of it still runs
            # (Worker.active_threads): a task the scheduler has released but that still runs (a hung cell)
            # shows here, not on the scheduler, which has forgotten it. Passed on by the scheduler, as
            # distributed's own Client.call_stack does, one worker at a time.
            try:
                answer = await asyncio.wait_for(
                    scheduler.broadcast(msg={"op": "call_stack"}, workers=[address]), seconds)
                return address, len(answer.get(address) or {})
            except Exception:  # TimeoutError (asyncio's, before 3.11), or the worker's comm closed
                return address, None

        async def ask_all():
            return dict(await asyncio.gather(*(ask(a) for a in workers)))

        # the client's loop itself (for a cluster we own, the scheduler's too) may be what is blocked
        return within(seconds + SCHEDULER_WITHIN, self._client_loop, self.client.sync, ask_all)

    @property
    def _client_loop(self) -> str:
        """The client's event loop, as a culprit."""
        return f"the event loop of the harness's client of {self.address}"

    def health(self, *, grace: float = 3.0, gone: tuple = ()) -> Health:
        """Idle and whole? Waits up to ``grace`` seconds for a just-ended cell's tasks to clear.

        ``gone``: addresses of workers that were just killed; until the scheduler
        has dropped them, the cluster is not whole yet.
        """
        return self._health_by(time.monotonic() + grace, gone)

    def quick_health(self, *, settled: bool, reached: bool = True, grace: float = QUICK_GRACE) -> Health | None:
        """The check after a cell that ended cleanly (no timeout, no death, no harness error): the scheduler's
        counts over its RPC, one round trip, without asking the workers. ``settled``: no task of the cell can
        still run in a worker thread (its compute returned, or its graph never left). None when it cannot tell
        (not settled, a task or a worker missing, no answer): the full check (:meth:`health`) decides then."""
        if not settled:
            # a task the scheduler released while a worker ran it (a failed graph's other branch) is seen
            # only by asking the workers
            return None
        deadline = time.monotonic() + grace
        while True:
            try:
                state = self._scheduler_now()
            except Exception:  # ClusterHung, or its connection closed: the full check says which
                return None
            if state["workers"] >= self.n_workers and not (state["tasks"] or state["processing"]):
                return Health()
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)

    def _health_by(self, deadline: float, gone: tuple) -> Health:
        while True:
            state = self.state(gone, answer_within=min(ANSWER_WITHIN, max(0.5, deadline - time.monotonic())))
            problems = []
            for address in state["unanswered"]:
                problems.append(f"worker {address} {UNANSWERING.format(state['answer_within'])}")
            lingering = set(gone) & set(state["addresses"])
            if state["workers"] - len(lingering) < self.n_workers:
                problems.append(f"{state['workers'] - len(lingering)} of {self.n_workers} workers connected")
            if state["tasks"]:
                problems.append(f"{state['tasks']} tasks still on the scheduler")
            if state["processing"] or state["executing"]:
                problems.append("workers still executing tasks of a finished cell")
            if not problems or time.monotonic() > deadline or self._no_use_waiting():
                return Health(problems)
            time.sleep(0.05)

    def _no_use_waiting(self) -> bool:
        """Whether what a health check waits for cannot come (a worker that will not come back): it then
        answers at once instead of at its deadline."""
        return False

    def _replace_stuck_workers(self) -> tuple:
        """Kill the workers still running a task of a finished cell, or not answering at all, then wait
        for their nannies' new ones; (health, what was killed and why: one line per worker not answering).

        A worker thread stuck in a hung task cannot be interrupted, and a graceful restart waits for it
        (tens of seconds). A worker whose event loop is blocked, or whose process is stopped, answers
        nothing, a graceful restart included. Killed (SIGKILL ends a stopped process too), its nanny
        starts a fresh worker in a second or two. Only for clusters picklematrix started on this
        machine: their worker pids are ours to kill.
        """
        state = self.state(answer_within=ANSWER_WITHIN)
        stuck = tuple(sorted(a for a, n in state["busy"].items() if n is None or n))
        killed = []
        if stuck:
            for address, pid in self._worker_pids(stuck).items():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    continue
                if address in state["unanswered"]:
                    killed.append(f"worker {address} (pid {pid}) {UNANSWERING.format(ANSWER_WITHIN)}; "
                                  f"killed, its nanny starts a new one")
        # A nanny brings a killed worker back in about a second; ten is plenty.
        return self.health(grace=10 if stuck else 3, gone=stuck), killed

    # Whether the cluster runs this env's own interpreter and packages (a LocalCluster the run started).
    same_env = False

    def identity(self) -> dict | None:
        """The cluster's versions, ``{"python", "versions"}`` as :func:`version_report`'s identity names them
        (what a case's ``cluster_*`` conditions read), asked of its workers once; None for a cluster of this
        env (``same_env``), whose versions are the client's."""
        if self.same_env:
            return None
        if getattr(self, "_identity", None) is None:
            self._identity = version_report(self.client)["identity"]
        return self._identity

    def _warn(self, message: str) -> str:
        self.warnings.append(message)
        return message

    def describe(self) -> dict:
        """The run's record of this cluster (the ``cluster`` block of the JSON)."""
        return {"address": self.address, "owned": self.owned, "workers": self.n_workers,
                "worker_memory_limit": self.memory_limit,
                "restarts": self.restarts, "warnings": list(self.warnings)}

    # the workers' memory limit in bytes, where the harness set or knows it
    memory_limit: int | None = None

    def close(self, timeout: float | None = None):
        """Close the client, waiting at most ``timeout`` seconds (default 10) for it to say so."""
        if self.client is not None:
            timeout = 10 if timeout is None else timeout
            try:
                # a client whose loop is blocked, or whose scheduler is gone, may not close at all
                within(timeout + 3, f"closing the client of {self.address}", self.client.close, timeout=timeout)
            except Exception:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


# The packages a cluster's identity is made of (picklematrix.envs.skew): the tracked ones, asked of distributed's
# version check besides its own list (pydantic is not on it).
IDENTITY_PACKAGES = PACKAGES


def version_report(client) -> dict:
    """distributed's own version check (``Client.get_versions``, pydantic included) of the client, the
    scheduler and the workers, with its mismatch warning (the text distributed warns with, or "") and the
    cluster's identity: the python and packages of its workers (of the scheduler when it has none)."""
    from distributed.versions import error_message

    found = within(30, "distributed's version check (Client.get_versions)", client.get_versions, check=False,
                   packages=["pydantic"])

    def side(info) -> dict:
        if not isinstance(info, dict):
            return {"error": str(info)}
        packages = dict(info.get("packages") or {})
        python = str(packages.pop("python", None) or (info.get("host") or {}).get("python") or "")
        return {"python": python.replace(".final.0", ""), "packages": packages}

    workers = {address: side(info) for address, info in (found.get("workers") or {}).items()}
    scheduler, client_side = side(found.get("scheduler")), side(found.get("client"))
    try:
        mismatch = error_message(found.get("scheduler"), found.get("workers") or {}, found.get("client"))["warning"]
    except Exception as e:  # an odd answer from an old or locked-down cluster: say so
        mismatch = f"(distributed's version check could not compare: {type(e).__name__}: {e})"
    ref = next((w for w in workers.values() if "packages" in w), scheduler)
    identity = {"python": ref.get("python", ""),
                "versions": {k: (ref.get("packages") or {}).get(k) for k in IDENTITY_PACKAGES}}
    return {"client": client_side, "scheduler": scheduler, "workers": workers, "mismatch": mismatch,
            "identity": identity}
