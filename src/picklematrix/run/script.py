"""The script context, harness side: each cell in a process forked from the preloaded server, watched.

The cell's own side is picklematrix.run.cell (``child_main``). Its process sends
its events over a pipe; the harness waits for its answer until the case's
deadline, kills it if it hangs, and keeps its output (stdout and stderr, in a
file) only when it died with something to show.
"""

from __future__ import annotations

import os
import tempfile
import time

from picklematrix.processes import process_context
from picklematrix.run.attempt import CLOCK_EVENTS, CONNECT_ALLOWANCE, Attempt, compute_wait
from picklematrix.run.corpus import Case


class ScriptCells:
    """Runs script-context cells, one process each, and the one still ending."""

    def __init__(self, log_dir: str | None = None):
        self.ctx = process_context()
        # A directory of its own unless given: where a cell that died leaves its output (its
        # detail names the file). Removed at close when no cell left anything there.
        self.own_log_dir = log_dir is None
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="picklematrix-cells-")
        # A cell process that has sent its result and is closing its client: reaped when the next
        # cell starts (see reap), so that its ending overlaps this cell's health check.
        self.ending = None

    def run(self, case: Case, method: str, *, address: str, samples: int) -> Attempt:
        """Run one cell in a fresh process against the scheduler at ``address``."""
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
        attempt = Attempt(log_path=os.path.join(self.log_dir, f"{case.case_id}-{name}.log"))
        reader, writer = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=child_main, args=(request, writer, attempt.log_path), daemon=True)
        proc.start()
        writer.close()
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
