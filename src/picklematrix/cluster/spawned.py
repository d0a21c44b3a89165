"""A cluster started from another env's interpreter with dask's own commands: a skew pair's cluster.

``python -m dask scheduler`` and ``python -m dask worker`` (nannies, one thread each) of the cluster env, on
127.0.0.1 with every dashboard and HTTP server on loopback and the dashboard off; the run's client connects
from its own env. The run owns these processes: a stuck worker is killed (its nanny starts a new one), and
a cluster that cannot be made whole is stopped and started again, as a ``LocalCluster`` of the run's own is.
The processes run in a process group of their own, ended when the cluster closes and when the run ends
(picklematrix.processes.end_children).

What a replacement costs is what a skew pair of two Python minors costs: most cases that send code by value
bring its cluster down (its 3.11 scheduler cannot pickle a 3.12 function again for a worker, whose nanny then
closes for good). So such a worker is replaced by a new ``dask worker`` beside the scheduler, which is well
(``_mend``; from the second on, forked from a zygote of the cluster env that has imported dask's command
line: picklematrix.cluster.zygote), and the whole cluster only when that does not make it whole; the
scheduler and the workers are spawned side by side; each nanny forks its worker (distributed's
``multiprocessing-method: fork``) instead of spawning one more interpreter that imports distributed; a
replaced cluster ends on a thread of its own; and once a cluster had to be replaced, the next one is started
ahead (a standby). The default profile's outcomes, root causes included, are the same as with spawned workers
started one after the other (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from picklematrix import processes
from picklematrix.cluster.base import (
    QUICK_GRACE,
    SCHEDULER_WITHIN,
    SHUT_DOWN,
    BaseCluster,
    ClusterHung,
    Health,
    version_report,
    within,
)
from picklematrix.cluster.limits import START_WITHIN_VAR, start_within, worker_memory_limit
from picklematrix.cluster.zygote import Zygote

# What OwnedCluster sets with dask.config for its LocalCluster, for processes of another env: dask reads
# DASK_* variables at import (see OwnedCluster.start for why each).
CLUSTER_CONFIG = {
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
    "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": "False",
    "DASK_DISTRIBUTED__ADMIN__LARGE_GRAPH_WARNING_THRESHOLD": "1GB",
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    # each nanny forks its worker (see the module doc)
    "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD": "fork",
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
    "DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "1s",
}
LOOPBACK = "127.0.0.1"
# How long a nanny gets to bring back a worker that died before the whole cluster is replaced.
RESPAWN_WITHIN = 15.0
# distributed.nanny's line when a worker process ends unasked
NANNY_EXIT = re.compile(r"distributed\.nanny - \w+ - (?P<text>Worker process \d+ (?:was killed by signal "
                        r"(?P<signal>\d+)|exited with status (?P<status>-?\d+)))")
NANNY_GONE = re.compile(r"distributed\.nanny - \w+ - Closing Nanny gracefully|Nanny failed to start")
# a process of the cluster (the scheduler, handing a task to a worker) that could not pickle what it was sent
SCHEDULER_SERIALIZE = re.compile(r"distributed\.protocol\.pickle - ERROR - (?P<text>Failed to serialize .*?)\.?$")
EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Warning): ")
SIGNALS = {"11": "SIGSEGV: its interpreter crashed", "6": "SIGABRT", "7": "SIGBUS"}


class SpawnedCluster(BaseCluster):
    """Scheduler and workers started with ``<python> -m dask scheduler|worker`` (see the module doc)."""

    owned = True
    # the cluster env is a matrix env, with picklematrix: its worker pids can be asked of its scheduler (by
    # reference), and its workers are ours to kill
    picklematrix_on_cluster = True

    def __init__(self, python: str, n_workers: int = 2):
        super().__init__(n_workers)
        self.python = python
        self.memory_limit = worker_memory_limit(n_workers)
        self.scheduler = self.workers = None
        self.dir = None
        self._address = None
        # Once a cell has made the whole cluster be replaced, the next replacement is started ahead (a
        # standby: a scheduler and its workers of the cluster env, idle, that no client knows of): a cell
        # that brings down a cluster of another Python often comes with others that do (every case that
        # sends code by value, on a Python-minor skew pair).
        self._keep_standby = False
        self._standby = None
        self._retiring: list = []  # threads ending replaced clusters (_retire)
        # workers started since the cluster did, each a ``dask worker`` in place of one whose nanny closed for
        # good (_mend), and where in the cluster's log the lines since the last of them start
        self.added: list = []
        self._log_from = 0
        self._ended: set = set()  # pids of the ``dask worker`` processes that had ended by then
        # Once a worker had to be added, the next ones are forked from a zygote of the cluster env
        # (picklematrix.cluster.zygote); False once it failed (they are spawned again).
        self._zygote: Zygote | None | bool = None

    @property
    def address(self) -> str:
        return self._address

    def _command(self, role: str, *args) -> list[str]:
        return [self.python, "-m", "dask", role, *args]

    def _spawn(self, command: list[str], log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **CLUSTER_CONFIG}, start_new_session=True)
        processes.adopt_group(proc.pid)
        return proc

    def _launch(self) -> "_Launch":
        """Spawn a scheduler and its workers at once: ``dask worker --scheduler-file`` waits for the file the
        scheduler writes, so the two interpreters import distributed side by side."""
        launch = _Launch(Path(tempfile.mkdtemp(prefix="pm-cluster-")))
        launch.scheduler = self._spawn(self._command(
            "scheduler", "--host", LOOPBACK, "--port", "0", "--no-dashboard", "--dashboard-address",
            f"{LOOPBACK}:0", "--scheduler-file", str(launch.scheduler_file)), launch.log)
        launch.workers = self._spawn(self._command(
            "worker", "--scheduler-file", str(launch.scheduler_file), "--nworkers", str(self.n_workers),
            "--nthreads", "1", "--memory-limit", str(self.memory_limit), "--host", LOOPBACK, "--no-dashboard",
            "--dashboard-address", f"{LOOPBACK}:0", "--local-directory", str(launch.dir)), launch.log)
        return launch

    def start(self) -> "SpawnedCluster":
        from distributed import Client

        launch, self._standby = self._standby, None
        if launch is not None and (launch.scheduler.poll() is not None or launch.workers.poll() is not None):
            _end(launch)  # a standby that did not live to be used: start afresh (its log is gone with it)
            launch = None
        launch = launch or self._launch()
        self.dir, self.log, self.scheduler, self.workers = launch.dir, launch.log, launch.scheduler, launch.workers
        self.added, self._log_from, self._ended = [], 0, set()
        scheduler_file = launch.scheduler_file
        deadline = time.monotonic() + start_within()
        while not scheduler_file.exists():
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                problem = self._problem(f"the scheduler ({' '.join(self._command('scheduler'))}) "
                                        + ("exited" if self.scheduler.poll() is not None else
                                           f"did not start within {start_within():g}s ({START_WITHIN_VAR})"))
                self.close(timeout=1)
                raise ClusterHung(problem)
            time.sleep(0.02)
        while True:  # written in one go by the scheduler, but not atomically
            try:
                self._address = json.loads(scheduler_file.read_text())["address"]
                break
            except (ValueError, KeyError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        try:
            self.client = within(max(1.0, deadline - time.monotonic()), f"connecting to {self._address}", Client,
                                 self._address, set_as_default=False, timeout=30)
            while len(within(30, f"the scheduler at {self._address}", self.client.scheduler_info)
                      .get("workers", {})) < self.n_workers:
                if self.workers.poll() is not None or time.monotonic() > deadline:
                    raise ClusterHung("the workers " + ("exited" if self.workers.poll() is not None else
                                      f"did not all connect within {start_within():g}s ({START_WITHIN_VAR})"))
                time.sleep(0.02)
        except Exception as e:
            problem = self._problem(f"{type(e).__name__}: {e}")
            self.close(timeout=1)
            raise ClusterHung(problem) from None
        if self._keep_standby:
            # the next replacement's cluster starts now, beside the cells, instead of when it is needed
            self._standby = self._launch()
        return self

    def _problem(self, what: str) -> str:
        """``what`` went wrong, with the end of the cluster's log (its processes' output)."""
        try:
            tail = self.log.read_text(errors="replace")[-2000:].strip()
        except OSError:
            tail = ""
        return f"cluster from {self.python}: {what}" + (f"; its log ends:\n{tail}" if tail else "")

    def shut_down(self) -> bool:
        """The scheduler process ended (a cell called ``client.shutdown()``, or it died)."""
        return self.scheduler is not None and self.scheduler.poll() is not None

    def scheduler_died(self) -> str | None:
        """How the scheduler process ended, when it did not end as asked (``client.shutdown()`` ends it with
        status 0): killed by a signal (a segfault unpickling another Python version's code, say) or exiting
        with an error status. None while it runs or after a clean exit."""
        code = None if self.scheduler is None else self.scheduler.poll()
        if not code:
            return None
        if code < 0:
            number = str(-code)
            return (f"the scheduler process (pid {self.scheduler.pid}) was killed by signal {number}"
                    f" ({SIGNALS.get(number, 'signal ' + number)})")
        return f"the scheduler process (pid {self.scheduler.pid}) exited with status {code}"

    def health(self, *, grace: float = 3.0, gone: tuple = ()) -> Health:
        if self.shut_down():
            return Health([SHUT_DOWN], shut_down=True)
        try:
            return self._health_by(time.monotonic() + grace, gone)
        except Exception as e:  # the scheduler's connection broke (CommClosedError) or it did not answer
            try:
                self.scheduler.wait(5)  # a scheduler that crashed is going away: know it before judging the cell
            except subprocess.TimeoutExpired:
                pass
            if self.shut_down():
                return Health([SHUT_DOWN], shut_down=True)
            return Health([f"the scheduler at {self.address} did not answer: {type(e).__name__}: {e}"])

    def quick_health(self, *, settled: bool, reached: bool = True, grace: float = QUICK_GRACE) -> Health | None:
        if self.shut_down():
            return Health([SHUT_DOWN], shut_down=True)
        return super().quick_health(settled=settled, reached=reached, grace=grace)

    def make_healthy(self, reason: str) -> str | None:
        """Replace stuck workers; if that does not make it whole, stop and start the whole cluster."""
        self.restarts += 1
        killed = []
        try:
            if self.shut_down():
                problems = self.scheduler_died() or SHUT_DOWN
            elif self._nanny_gone():
                problems = "a nanny closed for good: its worker will not come back (see the cluster's log)"
                mended = self._mend()
                if mended is not None:
                    return mended
            else:
                health, killed = self._replace_stuck_workers()
                if not health.ok and self.workers.poll() is None and not self._nanny_gone():  # (gone meanwhile)
                    # a nanny brings a worker back in a new interpreter of the cluster env (spawned, importing
                    # distributed: seconds on a busy machine): cheaper to wait for than a whole new cluster
                    health = self.health(grace=RESPAWN_WITHIN)
                if health.ok:
                    return "; ".join(killed) or None
                problems = "; ".join(health.problems)
        except Exception as e:  # ClusterHung: the scheduler does not answer
            problems = f"{type(e).__name__}: {e}"
        message = self._warn(f"replaced the whole cluster (from {self.python}) after {reason} ({problems})")
        self._retire()
        self._keep_standby = True
        self.start()
        return "; ".join([*killed, message])

    def _mend(self) -> str | None:
        """In place of the workers whose nannies closed for good, start as many in a new ``dask worker`` of the
        cluster env, beside the scheduler and the workers that are left: one interpreter, where replacing the
        whole cluster starts two and ends three. The message for the cell, once the cluster is whole again;
        None when it is not (the whole cluster is replaced then).

        On a Python-minor skew pair this is what most cells that send code by value need: the scheduler could
        not pickle the task again for a worker, whose connection then broke, and whose nanny closed for good;
        the scheduler itself is well."""
        try:
            info = within(SCHEDULER_WITHIN, f"the scheduler at {self._address}", self.client.scheduler_info)
        except Exception:
            return None
        missing = self.n_workers - len(info.get("workers", {}))
        if missing < 1 or self.scheduler.poll() is not None:
            return None
        # what says that no worker will come back is what happens from now on: the next nanny that closes, the
        # next ``dask worker`` that ends
        self._log_from = len(self._log_text())
        self._ended = {p.pid for p in self._worker_procs() if p.poll() is not None}
        self.added.append(self._start_worker([
            self._address, "--nworkers", str(missing), "--nthreads", "1", "--memory-limit", str(self.memory_limit),
            "--host", LOOPBACK, "--no-dashboard", "--dashboard-address", f"{LOOPBACK}:0",
            "--local-directory", str(self.dir)]))
        health = self.health(grace=RESPAWN_WITHIN)
        if not health.ok:
            return None
        return f"started {missing} worker{'s' if missing > 1 else ''} of {self.python} in place of " \
               f"{'those' if missing > 1 else 'one'} whose nanny closed for good"

    def _start_worker(self, args: list[str]):
        """``dask worker ARGS`` of the cluster env, its output in the cluster's log: forked by the zygote once it
        is up (picklematrix.cluster.zygote), else spawned, and the zygote started beside it for the next one
        (where one worker had to be added, more follow: a Python-minor skew pair needs one for most cells)."""
        if isinstance(self._zygote, Zygote):
            try:
                return self._zygote.fork(["worker", *args], self.log)
            except OSError as e:
                self._warn(f"the cluster env's zygote failed ({e}); its workers are spawned from now on")
                self._zygote.close()
                self._zygote = False
        proc = self._spawn(self._command("worker", *args), self.log)
        if self._zygote is None:
            try:
                self._zygote = Zygote(self.python, {**os.environ, **CLUSTER_CONFIG}, self.log)
            except OSError as e:
                self._warn(f"the cluster env's zygote did not start ({e}); its workers are spawned")
                self._zygote = False
        return proc

    def memory_kills(self, since: float) -> list:
        """What the nannies logged of their workers' ends since ``since`` (``time.time()``): besides a memory
        limit, a worker killed by a signal (a segfault: code of another Python version, say) or exiting with a
        status, one line each, from the cluster's log (the nannies run in processes of another env)."""
        found = super().memory_kills(since)
        lines = self._log_text().splitlines()
        for i, line in enumerate(lines):
            if SCHEDULER_SERIALIZE.search(line) and _logged_at(line) >= since:
                error = next((x.strip() for x in lines[i + 1:i + 12] if EXCEPTION_LINE.match(x)), "")
                found.append(f"the cluster logged: {SCHEDULER_SERIALIZE.search(line)['text']}"
                             + (f": {error}" if error else ""))
        for line in lines:
            m = NANNY_EXIT.search(line)
            if m is None or m["signal"] == "9" or m["signal"] == "15":  # our own kills and SIGTERMs
                continue
            if _logged_at(line) >= since:
                found.append(f"the nanny of a worker logged: {m['text']}"
                             + (f" ({SIGNALS.get(m['signal'], 'signal ' + m['signal'])})" if m["signal"] else ""))
        return found

    def _no_use_waiting(self) -> bool:
        # a nanny that closed for good (its worker's connection to the scheduler broke: the scheduler could not
        # pickle what it had to send it) brings no worker back; nor does a ``dask worker`` that has ended
        return self._nanny_gone() or any(p.poll() is not None and p.pid not in self._ended
                                         for p in self._worker_procs())

    def _worker_procs(self) -> list:
        return [p for p in (self.workers, *self.added) if p is not None]

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def _nanny_gone(self) -> bool:
        """A nanny of this cluster closed for good since it started or was last mended (its scheduler connection
        broke, say): no worker comes back from it, so waiting for one is no use. (Each start logs to a new file.)"""
        return bool(NANNY_GONE.search(self._log_text(), self._log_from))

    def describe(self) -> dict:
        out = {**super().describe(), "started_from": self.python}
        try:
            out["versions"] = version_report(self.client)
        except Exception as e:
            out["versions"] = {"error": f"{type(e).__name__}: {e}"}
        return out

    def close(self, timeout: float | None = None):
        """Close the client, then end the processes: SIGTERM, and SIGKILL for what is left after ``timeout``;
        a standby's processes and the zygote too."""
        self._close_current(timeout)
        standby, self._standby = self._standby, None
        if standby is not None:
            _end(standby)
        if isinstance(self._zygote, Zygote):
            self._zygote.close()
        self._zygote = None
        for thread in self._retiring:
            thread.join(5)
        self._retiring = []

    def _retire(self) -> None:
        """Let go of the cluster in use, to replace it: it is closed as :meth:`_close_current` closes it (a second
        for its processes), on a thread of its own, so the next cluster's cells need not wait."""
        retired = SpawnedCluster(self.python, self.n_workers)
        retired.client, retired._address, retired.dir = self.client, self._address, self.dir
        retired.scheduler, retired.workers, retired.added = self.scheduler, self.workers, self.added
        self.client = self.scheduler = self.workers = self.dir = None
        self.added = []
        thread = threading.Thread(target=retired._close_current, args=(1,), daemon=True,
                                  name="picklematrix: ending a replaced cluster")
        thread.start()
        self._retiring = [t for t in self._retiring if t.is_alive()] + [thread]

    def _close_current(self, timeout: float | None = None):
        super().close(timeout=min(timeout or 5, 5))
        procs = [*self._worker_procs(), *([self.scheduler] if self.scheduler is not None else [])]
        _end_processes(procs, 5 if timeout is None else timeout)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)  # its log was read before: memory_kills, _problem
        self.client = self.scheduler = self.workers = self.dir = None
        self.added = []


class _Launch:
    """The processes of one start of a spawned cluster, and where they write."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.scheduler_file = directory / "scheduler.json"
        self.log = directory / "cluster.log"
        self.scheduler = self.workers = None


def _end(launch: _Launch) -> None:
    """End a launch no client uses (a standby) at once."""
    _end_processes([p for p in (launch.workers, launch.scheduler) if p is not None], 0)
    shutil.rmtree(launch.dir, ignore_errors=True)


def _end_processes(procs: list, timeout: float) -> None:
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    end = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc, signal.SIGKILL)  # the nannies' workers too, whatever the nanny did
        proc.wait()
        processes.forget_group(proc.pid)


def _logged_at(line: str) -> float:
    """When distributed logged ``line`` ("2026-12-01 08:54:10,507 - ...", local time); 0 if it is no log line."""
    try:
        return time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(line[20:23]) / 1000
    except ValueError:
        return 0.0


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except OSError:
        pass
