"""The distributed cluster a run computes on: one it starts (OwnedCluster) or one it is given (ExistingCluster).

A cluster we start is a ``LocalCluster`` with worker processes (nannies),
bound to 127.0.0.1, dashboard off, started once per run; its workers fork
from the harness's preloaded server (picklematrix.processes). Between cells the
harness checks it is idle and whole; after a cell that timed out or killed a
worker, the workers are replaced: a running task cannot be interrupted, and
a worker thread stuck in a hung task would make every later cell time out.

A cluster we did not start (``--scheduler ADDRESS``) is never replaced: its
problems are reported instead. Only its workers may be restarted, and only
when it is one ``python -m picklematrix cluster`` serves on this machine
(``--restartable``; see :func:`serve`).
"""

from __future__ import annotations

import os
import signal
import time

from .cluster_health import BaseCluster, Health, scheduler_state


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

    def __init__(self, n_workers: int = 2, *, fork_workers: bool = True):
        """``fork_workers``: workers fork from the preloaded server (picklematrix.processes). False
        leaves distributed's own setting (spawn, unless this process set another): cheaper for a
        cluster that starts its workers once and never replaces one, as there is then no server to
        start first."""
        super().__init__(n_workers)
        self.fork_workers = fork_workers
        self.local_cluster = None

    @property
    def address(self) -> str:
        return self.local_cluster.scheduler_address

    def start(self) -> "OwnedCluster":
        import dask
        from distributed import Client, LocalCluster

        from .processes import use_for_workers

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
        self.client = Client(self.local_cluster, set_as_default=False)
        return self

    def _scheduler_now(self) -> dict:
        return scheduler_state()(self.local_cluster.scheduler)

    def health(self, *, grace: float = 3.0, gone: tuple = ()) -> Health:
        deadline = time.monotonic() + grace
        # The scheduler is in this process: wait for the cell's tasks to clear there (a cell's
        # process releases them as it closes its client, which may still be going on), checking
        # often and cheaply, before asking the workers (a round trip) whether any still runs one.
        read = scheduler_state()
        while time.monotonic() < deadline:
            now = read(self.local_cluster.scheduler)
            if not (now["tasks"] or now["processing"]):
                break
            time.sleep(0.002)
        return self._health_by(deadline, gone)

    def make_healthy(self, reason: str) -> str | None:
        """Replace the stuck workers; if that does not make the cluster whole, the whole cluster."""
        self.restarts += 1
        try:
            health = self._replace_stuck_workers()
            if health.ok:
                return None
            # Starting a new cluster takes less than a graceful restart that
            # may itself wait on a wedged nanny: go straight there.
            problems = "; ".join(health.problems) + self._nanny_report()
        except Exception as e:
            problems = f"restart failed: {type(e).__name__}: {e}"
        message = self._warn(f"replaced the whole local cluster after {reason} ({problems})")
        self.close()
        self.start()
        return message

    def _nanny_report(self) -> str:
        """What the nannies say about themselves (for the warning).

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

    def close(self):
        super().close()
        if self.local_cluster is not None:
            try:
                self.local_cluster.close(timeout=20)
            except Exception:
                pass
        self.local_cluster = self.client = None


class ExistingCluster(BaseCluster):
    """A cluster at an address the run was given: never replaced.

    ``restartable``: one that ``python -m picklematrix cluster`` serves on this
    machine, whose stuck workers may be killed and whose workers may be
    restarted. Any other is only checked: its problems become warnings.
    """

    def __init__(self, address: str, *, restartable: bool = False):
        super().__init__(n_workers=0)  # counted on connecting
        self._address = address
        self.restartable = restartable

    @property
    def address(self) -> str:
        return self._address

    def start(self) -> "ExistingCluster":
        from distributed import Client

        self.client = Client(self._address, set_as_default=False, timeout=30)
        self.n_workers = len(self.client.scheduler_info().get("workers", {}))
        return self

    def make_healthy(self, reason: str) -> str | None:
        """Restart the workers if we may, else report; returns the warning, if any."""
        if not self.restartable:
            health = self.health(grace=0.5)
            if health.ok:
                return None
            return self._warn(f"cluster at {self.address} may be unhealthy after {reason}: "
                              f"{'; '.join(health.problems)}")
        self.restarts += 1
        try:
            if self._replace_stuck_workers().ok:
                return None
            self.client.restart(timeout=30, wait_for_workers=True)
            health = self.health(grace=10)
            if health.ok:
                return None
            problems = "; ".join(health.problems)
        except Exception as e:
            problems = f"restart failed: {type(e).__name__}: {e}"
        # Nothing more we may do to it; later cells report instead of
        # paying for another failed restart each.
        self.restartable = False
        return self._warn(f"workers of {self.address} still unhealthy after a restart ({reason}): {problems}")

    def worker_versions(self) -> dict:
        """distributed's own version report for scheduler and workers."""
        try:
            return self.client.get_versions(check=False)
        except Exception as e:  # an old or locked-down cluster: say so, don't fail the run
            return {"error": f"{type(e).__name__}: {e}"}

    def describe(self) -> dict:
        return {**super().describe(), "versions": self.worker_versions()}


def open_cluster(address: str | None = None, *, n_workers: int = 2, restartable: bool = False) -> BaseCluster:
    """The cluster a run computes on, ready: the one at ``address``, else a new ``LocalCluster``."""
    if address is None:
        return OwnedCluster(n_workers).start()
    return ExistingCluster(address, restartable=restartable).start()


def serve(state_file: str, n_workers: int = 2) -> None:
    """Start a cluster and run it until SIGTERM/SIGINT (``python -m picklematrix cluster``).

    Once it is up, ``state_file`` holds ``{"address", "pid", "workers"}`` (written in one step);
    it is removed when the cluster stops.
    """
    import json
    import threading

    with OwnedCluster(n_workers) as cluster:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        tmp = state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"address": cluster.address, "pid": os.getpid(), "workers": cluster.n_workers}, f)
        os.replace(tmp, state_file)
        try:
            while not stop.wait(0.5):
                pass
        finally:
            try:
                os.unlink(state_file)
            except OSError:
                pass
