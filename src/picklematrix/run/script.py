"""The script context, harness side: each cell in a process forked from the preloaded server, watched.

The cell's own side is picklematrix.run.cell (``child_main``). Its process sends
its events over a pipe; the harness waits for its answer until the case's
deadline, kills it if it hangs, and keeps its output (stdout and stderr, in a
file) only when it died with something to show.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass

from picklematrix.processes import process_context
from picklematrix.run.attempt import CLOCK_EVENTS, CONNECT_ALLOWANCE, Attempt, compute_wait
from picklematrix.run.corpus import Case


@dataclass
class _Started:
    """A cell's process, forked, waiting for the word to connect its client (``connect``) or to run (``go``)."""

    key: tuple
    proc: object
    reader: object
    go: object
    log_path: str
    connecting: bool = False  # told to connect


class ScriptCells:
    """Runs script-context cells, one process each: the one running, the one still ending, the next one waiting
    (connecting its client), and the one after it, forked."""

    def __init__(self, log_dir: str | None = None):
        self.ctx = process_context()
        # A directory of its own unless given: where a cell that died leaves its output (its
        # detail names the file). Removed at close when no cell left anything there.
        self.own_log_dir = log_dir is None
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="picklematrix-cells-")
        # A cell process that has sent its result and is closing its client: reaped when the next
        # cell starts (see reap), so that its ending overlaps this cell's health check.
        self.ending = None
        # The next cell's process, started ahead (see prepare), and the thread forking it, if it is not done.
        self.prepared: _Started | None = None
        self.forking: threading.Thread | None = None
        # The process of the cell after that one, forked and not told to connect (see fork_ahead), and its thread.
        self.ahead: _Started | None = None
        self.forking_ahead: threading.Thread | None = None

    def _start(self, case: Case, method: str, address: str, samples: int) -> _Started:
        from picklematrix.run.cell import child_main

        request = {
            "case": case.case_id,
            "path": case.path,
            "source": case.source,
            "method": method,
            "context": "script",
            "scheduler": address,
            "timeout": case.timeout,
            "samples": samples,
        }
        name = method.replace("(", "").replace(")", "").replace("=", "")
        log_path = os.path.join(self.log_dir, f"{case.case_id}-{name}.log")
        reader, writer = self.ctx.Pipe(duplex=False)
        go_reader, go = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=child_main, args=(request, writer, log_path, go_reader), daemon=True)
        proc.start()
        writer.close()
        go_reader.close()
        return _Started(_key(case, method, address, samples), proc, reader, go, log_path)

    def prepare(self, case: Case, method: str, *, address: str, samples: int, connect: bool = True) -> None:
        """Fork the process of a cell that runs later, and let it connect its client now (``connect``) or when
        :meth:`connect` says so: the fork and the connect leave that cell's time. Its own code runs only when
        :meth:`run` says so, after the process before it has ended.

        Not told to connect, the process is forked from a thread: the harness goes on while the forkserver
        forks (a wait for another process to be scheduled, milliseconds on a busy machine). A process forked for
        this cell by :meth:`fork_ahead` is taken instead of a new one."""
        self.discard(ahead=False)
        self._forked(ahead=True)
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            if ahead.key == _key(case, method, address, samples) and ahead.proc.is_alive():
                self.prepared = ahead
                if connect:
                    self.connect()
                return
            _drop(ahead)
            self.keep_output(ahead.log_path, keep=False)
        if connect:
            self.prepared = self._start(case, method, address, samples)
            self.connect()
            return

        def fork():
            try:
                self.prepared = self._start(case, method, address, samples)
            except Exception:
                self.prepared = None  # run() forks it anew, and says what fails

        self.forking = threading.Thread(target=fork, name="picklematrix fork the next cell", daemon=True)
        self.forking.start()

    def fork_ahead(self, case: Case, method: str, *, address: str, samples: int) -> None:
        """Fork, from a thread, the process of the cell after the next one: it waits, not connected, until
        :meth:`prepare` takes it for its cell (and lets it connect once the cell before it has computed). Its
        fork, which was on every cell's way (the forkserver scheduled, the child started), then overlaps the
        cells before it. Nothing of it reaches the cluster before its turn: a fork, no client."""
        self._forked(ahead=True)
        if self.ahead is not None:
            if self.ahead.key == _key(case, method, address, samples):
                return
            _drop(self.ahead)
            self.keep_output(self.ahead.log_path, keep=False)
            self.ahead = None

        def fork():
            try:
                self.ahead = self._start(case, method, address, samples)
            except Exception:
                self.ahead = None  # its turn forks it anew, and says what fails

        self.forking_ahead = threading.Thread(target=fork, name="picklematrix fork a cell ahead", daemon=True)
        self.forking_ahead.start()

    def _forked(self, ahead: bool = False) -> None:
        """Wait for a fork that :meth:`prepare` (``ahead``: :meth:`fork_ahead`) left to a thread."""
        if ahead:
            forking, self.forking_ahead = self.forking_ahead, None
        else:
            forking, self.forking = self.forking, None
        if forking is not None:
            forking.join()

    def connect(self) -> None:
        """Let the prepared process connect its client now (the cell before it has computed)."""
        self._forked()
        started = self.prepared
        if started is not None and not started.connecting:
            started.connecting = True
            try:
                started.go.send("connect")
            except OSError:
                pass  # it has ended: run() starts the cell anew

    def discard(self, ahead: bool = True) -> None:
        """Drop the process :meth:`prepare` started (the cluster it connected to was replaced; the run ends),
        and (``ahead``) the one :meth:`fork_ahead` forked: not connected, it is kept while its cluster's
        address holds (its cell's key names it)."""
        self._forked()
        started, self.prepared = self.prepared, None
        if started is not None:
            _drop(started)
            self.keep_output(started.log_path, keep=False)
        if ahead:
            self._forked(ahead=True)
            started, self.ahead = self.ahead, None
            if started is not None:
                _drop(started)
                self.keep_output(started.log_path, keep=False)

    def run(self, case: Case, method: str, *, address: str, samples: int) -> Attempt:
        """Run one cell in a process of its own (the one prepared for it, else a new one) against the scheduler
        at ``address``."""
        self._forked()
        started, self.prepared = self.prepared, None
        if started is not None and (started.key != _key(case, method, address, samples)
                                    or not started.proc.is_alive()):
            self.prepared = started
            self.discard(ahead=False)
            started = None
        if started is not None:
            attempt = self._watch(started, case, method)
            if attempt is not None:
                return attempt
            # it ended before it could start the cell (its process group was killed by the cell before it,
            # say): nothing of this cell ran, so it runs in a new process
            self.keep_output(started.log_path, keep=False)
        return self._watch(self._start(case, method, address, samples), case, method, fresh=True)

    def _watch(self, started: _Started, case: Case, method: str, *, fresh: bool = False) -> Attempt | None:
        """Tell the cell's process to run, and watch it until its answer, its end or its deadline. None when a
        prepared process ended before it acknowledged the word to run."""
        proc, reader = started.proc, started.reader
        attempt = Attempt(log_path=started.log_path)
        went = False
        try:
            started.go.send("go")
        except OSError:
            pass  # it has ended: seen below as an end before the acknowledgement
        finally:
            started.go.close()
        deadline = time.monotonic() + case.timeout + CONNECT_ALLOWANCE
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    attempt.timed_out = True
                    break
                if not reader.poll(min(remaining, 1.0)):
                    continue
                try:
                    event = reader.recv()
                except (EOFError, OSError):
                    break
                if event.get("event") == "go":
                    went = True
                    continue
                attempt.absorb(event)
                if event.get("event") == "result":
                    break
                if event.get("event") in CLOCK_EVENTS:
                    deadline = time.monotonic() + compute_wait(case, method)
        finally:
            reader.close()
            if attempt.timed_out or attempt.answer is None:
                _end(proc, kill=True)
            else:
                # Its result is in; it closes its client and exits while the harness checks the
                # cluster's health. The next cell waits for it (reap).
                self.ending = proc
        if attempt.answer is None and not attempt.timed_out and not went and not fresh:
            return None
        if attempt.answer is None:
            attempt.died = proc.exitcode
        return attempt

    def reap(self) -> None:
        """Wait for the cell process that is ending (killed if it has not within 10 s)."""
        proc, self.ending = self.ending, None
        if proc is not None:
            _end(proc, kill=False)

    def keep_output(self, log_path: str, keep: bool) -> bool:
        """Keep a cell's output file if ``keep`` and it has any, else remove it; whether it was kept."""
        if keep and has_output(log_path):
            return True
        try:
            os.unlink(log_path)
        except FileNotFoundError:
            pass
        return False

    def close(self) -> None:
        self.discard()
        self.reap()
        if self.own_log_dir:
            # Empty logs too (a cell cut short when the run was stopped), then the dir if that emptied it:
            # a dead cell's output is kept.
            try:
                for name in os.listdir(self.log_dir):
                    path = os.path.join(self.log_dir, name)
                    if not has_output(path):
                        os.unlink(path)
                os.rmdir(self.log_dir)
            except OSError:
                pass


def _key(case: Case, method: str, address: str, samples: int) -> tuple:
    """What a process forked for a cell was forked for: its request (a process is taken only for its own cell)."""
    return (case.case_id, case.path, method, address, samples)


def _drop(started: _Started) -> None:
    """End a process forked for a cell that will not run in it."""
    started.go.close()
    started.reader.close()
    _end(started.proc, kill=True)


def _end(proc, *, kill: bool) -> None:
    if kill:
        proc.kill()
    proc.join(10)
    if proc.is_alive():
        proc.kill()
        proc.join(5)


def has_output(path: str) -> bool:
    """Whether the file at ``path`` exists and is not empty."""
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False
