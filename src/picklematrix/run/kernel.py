"""The kernel context, harness side: cells run in a real IPython kernel, as in a notebook.

One kernel (ipykernel, driven with jupyter_client) per run, reused across
cells: start-up is paid once. For each cell the harness executes, in order,
the notebook cells a user would have: a cell that starts a fresh namespace
(what ``%reset -f`` does, so that cases do not see each other's names) and
creates ``client``, the case's cell, and a compute cell that runs the method
*inside the kernel* and prints its events and result as marked JSON lines on
stdout (that code is picklematrix.run.inkernel).

The kernel's connection file and IPython profile (with its history database)
live in a private temporary directory, and so do its sockets: the kernel talks
over Unix sockets (ZMQ's ``ipc`` transport), not TCP. Over TCP, jupyter_client
picks five free ports and the kernel binds them a second later; on a busy
machine another process (a replaced dask worker, a client connecting) can take
one first, and that kernel then hangs in its start-up (seen: "Address already
in use", 60 s lost and a harness error for the cell). A cell that wedges or
kills the kernel costs that cell; the kernel is replaced.

Runs inside every matrix environment (jupyter_client and ipykernel installed there).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field

from picklematrix import outcomes as oc
from picklematrix.run.attempt import CLOCK_EVENTS, CONNECT_ALLOWANCE, Attempt, compute_wait
from picklematrix.run.inkernel import KERNEL_MARK
from picklematrix.run.methods import METHODS

# Before each case, one cell: the previous case's client closed, a fresh
# namespace without an earlier case's ``from __future__`` flags (see
# picklematrix.run.inkernel.kernel_reset), then the user's ``client``.
PREPARE_CELL = (
    "import picklematrix.run.inkernel\n"
    "picklematrix.run.inkernel.kernel_reset()\n"
    "from distributed import Client\n"
    "client = Client({address!r}, set_as_default={default}, timeout=30)\n"
    # (no name bound: the case's namespace holds only ``Client`` and ``client``, as a notebook's would)
    "__import__('picklematrix.run.inkernel').run.inkernel.kernel_baseline()"
)
# After a case's cell that raised (no compute cell to report it): what the case changed of the process's
# global state (the compute cell reports it itself, before its client closes).
CHECK_CELL = "__import__('picklematrix.run.inkernel').run.inkernel.kernel_report_changes()"
# After the case's own cell: the compute method runs inside the kernel; once
# the result is out, the client closes in a thread of the kernel while the
# harness checks the cluster (the next preparing cell waits for it).
COMPUTE_CELL = (
    "import picklematrix.run.inkernel as _picklematrix_inkernel\n"
    "_picklematrix_inkernel.kernel_compute({method!r}, case_id={case!r}, timeout={timeout!r}, samples={samples!r},\n"
    "                                      events_path={events_path!r})"
)


# the longest directory for the kernel's sockets: "<dir>/k<n>-<port>" stays under the 107-byte limit
_MAX_SOCKET_DIR = 90


@dataclass
class ExecuteResult:
    """What one notebook cell gave: how it ended, its error, its marked events and its other stdout lines."""

    status: str | None = None  # ok | error | timeout | died
    ename: str | None = None
    evalue: str | None = None
    events: list = field(default_factory=list)
    stdout: list = field(default_factory=list)

    @property
    def result_event(self):
        return next((e for e in reversed(self.events) if e.get("event") == "result"), None)


class KernelSession:
    """One IPython kernel for a run, started lazily and replaced when it goes bad."""

    def __init__(self, python: str = sys.executable, startup_timeout: float = 60):
        self.python = python
        self.startup_timeout = startup_timeout
        self.tmp = tempfile.mkdtemp(prefix="picklematrix-kernel-")  # mode 0700: private
        # A Unix socket's path has at most 107 bytes; a long TMPDIR gets a short directory for them.
        self.sockets = self.tmp if len(self.tmp) <= _MAX_SOCKET_DIR else tempfile.mkdtemp(prefix="pmk-", dir="/tmp")
        self.km = None
        self.kc = None
        self.ready = False
        self._launched_at = 0.0
        self.starts = 0
        self.startup_seconds: list = []
        # the last cell run in this kernel, "case [method]": the one to blame for a kernel that dies or hangs
        # before the next cell starts, while it is being cleared up
        self.previous: str | None = None
        # why the kernel was replaced outside a cell of its own (a death found between cells), for the next cell
        self.note: str | None = None
        # the global-state detector's price: its seconds per cell, and the replacements it asked for
        self.detector_seconds: list = []
        self.replaced_for_globals = 0

    def _spec_dir(self) -> str:
        spec_dir = os.path.join(self.tmp, "kernels", "picklematrix")
        os.makedirs(spec_dir, exist_ok=True)
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            json.dump({"argv": [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                       "display_name": "picklematrix", "language": "python"}, f)
        return os.path.dirname(spec_dir)

    def start(self):
        self.launch()
        self.wait_ready()

    def launch(self):
        """Start a kernel process and its channels; ``wait_ready`` waits for it to answer."""
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        self._launched_at = time.perf_counter()
        ksm = KernelSpecManager(kernel_dirs=[self._spec_dir()])
        km = KernelManager(kernel_name="picklematrix", kernel_spec_manager=ksm)
        km.transport = "ipc"
        km.ip = os.path.join(self.sockets, f"k{self.starts + 1}")  # sockets <ip>-1 ... <ip>-5
        km.connection_file = os.path.join(self.tmp, f"kernel-{self.starts + 1}.json")
        env = dict(os.environ)
        env.update(
            IPYTHONDIR=os.path.join(self.tmp, "ipython"),  # its own profile and history database
            JUPYTER_RUNTIME_DIR=os.path.join(self.tmp, "runtime"),
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        km.start_kernel(env=env, cwd=self.tmp)
        kc = km.client()
        kc.start_channels()
        self.km, self.kc = km, kc
        self.starts += 1
        self.ready = False

    def wait_ready(self):
        try:
            self.kc.wait_for_ready(timeout=self.startup_timeout)
        except RuntimeError:
            self.stop()
            raise
        self.ready = True
        self.startup_seconds.append(time.perf_counter() - self._launched_at)

    def ensure(self):
        if self.km is not None and not self.ready and self.km.is_alive():
            self.wait_ready()
        if self.km is None or not self.km.is_alive():
            if self.km is not None and self.previous is not None:
                # it died between cells: after the last cell, not in the next one
                self.note = f"the kernel died after {self.previous} had run; this cell ran in a fresh kernel"
            self.stop()
            self.start()

    def stop(self):
        if self.kc is not None:
            try:
                self.kc.stop_channels()
            except Exception:
                pass
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:
                pass
        self.km = self.kc = None
        self.ready = False

    def replace(self):
        """A new kernel for the next cell. Not waited for here: it starts while the harness goes on
        (the next cell is usually a script cell); ``ensure`` waits when a kernel cell needs it."""
        self.stop()
        self.launch()

    def run_cell(self, case, method: str, *, address: str, samples: int) -> Attempt:
        """Run one cell of ``case`` by ``method`` as a notebook would: the preparing cell (``client`` for the
        scheduler at ``address``), the case's cell, the compute cell. A cell that wedges or kills the kernel
        costs that cell: the kernel is replaced."""
        attempt = Attempt()

        def step(code, timeout, what, **clock) -> ExecuteResult:
            reply = self.execute(code, timeout, **clock)
            for event in reply.events:
                attempt.absorb(event)
            if reply.status in ("timeout", "died"):
                # A wedged or dead kernel is not reused: its threads and state are suspect.
                self.replace()
            elif reply.status == "error" and what != "cell":
                attempt.fail({"type": reply.ename, "message": reply.evalue}, f"{what} failed")
            return reply

        def ended(reply: ExecuteResult, where: str) -> bool:
            if reply.status == "timeout":
                attempt.timed_out = True
            elif reply.status == "died":
                attempt.died = where
            return reply.status in ("timeout", "died")

        previous, self.previous = self.previous, f"{case.case_id} [{method}]"
        notes = [self.note] if self.note else []
        self.note = None
        prepare = PREPARE_CELL.format(address=address, default=METHODS[method].default_client)
        reply = self.execute(prepare, CONNECT_ALLOWANCE)
        if reply.status in ("timeout", "died") and previous is not None:
            # The preparing cell first clears up after the previous case (its client's close, its namespace
            # dropped: a __del__ of its runs then). A kernel that dies or hangs there was broken by that case,
            # not by this one: this cell gets a fresh kernel, and says whom the death belongs to.
            notes.append(f"the kernel {'died' if reply.status == 'died' else 'hung'} while clearing up after "
                         f"{previous}; this cell ran in a fresh kernel")
            self.replace()
            self.ensure()
            reply = self.execute(prepare, CONNECT_ALLOWANCE)
        for event in reply.events:
            attempt.absorb(event)
        if reply.status in ("timeout", "died"):
            self.replace()
        elif reply.status == "error":
            attempt.fail({"type": reply.ename, "message": reply.evalue}, "preparing the notebook failed")
        if ended(reply, "while preparing the notebook") or reply.status == "error":
            return _noted(attempt, notes)
        reply = step(case.source, case.timeout + CONNECT_ALLOWANCE, "cell")
        if ended(reply, "while running the case's cell"):
            return _noted(attempt, notes)
        if reply.status == "error":
            # (its client is closed by the next case's preparing cell)
            failure = {"type": reply.ename, "message": reply.evalue}
            if reply.ename == "NotImplementedError":
                attempt.fail(failure, "cell raised NotImplementedError", outcome=oc.NOT_APPLICABLE)
            else:
                attempt.fail(failure, "the cell itself raised before any compute call")
            check = self.execute(CHECK_CELL, CONNECT_ALLOWANCE)
            if check.status in ("timeout", "died"):
                notes.append(f"the kernel {'died' if check.status == 'died' else 'hung'} after the case's cell; "
                             "it is replaced")
                self.replace()
            else:
                notes.extend(self._globals_changed(check.events))
            return _noted(attempt, notes)
        events_path = os.path.join(self.tmp, "events.jsonl")
        if os.path.exists(events_path):
            os.unlink(events_path)
        reply = step(COMPUTE_CELL.format(method=method, case=case.case_id, timeout=case.timeout, samples=samples,
                                         events_path=events_path),
                     CONNECT_ALLOWANCE, "compute", clock_events=CLOCK_EVENTS, clock_timeout=compute_wait(case, method))
        if ended(reply, "during the compute call"):
            _absorb_written(attempt, events_path)
        else:
            notes.extend(self._globals_changed(reply.events))
        return _noted(attempt, notes)

    def _globals_changed(self, events) -> list:
        """What the cell's "globals" event says the case changed of the process-global state; a kernel with
        such changes is replaced, so that no later cell sees them. The notes for the cell's detail."""
        report = next((e for e in reversed(events) if e.get("event") == "globals"), None)
        if report is None:
            return []
        self.detector_seconds.append(report.get("seconds") or 0.0)
        changed = report.get("changed") or []
        if not changed:
            return []
        self.replaced_for_globals += 1
        self.replace()
        return [f"the case changed process-global state ({', '.join(changed)}): the kernel is replaced, "
                "no later cell sees it"]

    def close(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.sockets, ignore_errors=True)

    def execute(self, code: str, timeout: float, *, clock_events=(), clock_timeout: float | None = None
                ) -> ExecuteResult:
        """Run ``code`` as a notebook cell; collect marked events as they are printed.

        The cell gets ``timeout`` seconds; a marked event whose kind is in
        ``clock_events`` (a compute call starting) gives it ``clock_timeout``
        more from then on.
        """
        out = ExecuteResult()
        kc = self.kc
        msg_id = kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        deadline = time.monotonic() + timeout
        idle = False
        partial = ""
        while not idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                out.status = "timeout"
                return out
            try:
                msg = kc.get_iopub_msg(timeout=min(remaining, 0.5))
            except queue.Empty:
                if not self.km.is_alive():
                    out.status = "died"
                    return out
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            content = msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                partial += content.get("text", "")
                *lines, partial = partial.split("\n")
                for line in lines:
                    if line.startswith(KERNEL_MARK):
                        event = json.loads(line[len(KERNEL_MARK):])
                        out.events.append(event)
                        if event.get("event") in clock_events:
                            deadline = time.monotonic() + clock_timeout
                    else:
                        out.stdout.append(line)
            elif kind == "error":
                out.ename, out.evalue = content.get("ename"), content.get("evalue")
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        if partial.startswith(KERNEL_MARK):
            out.events.append(json.loads(partial[len(KERNEL_MARK):]))
        out.status = "error" if out.ename else "ok"
        return out


def _noted(attempt: Attempt, notes: list) -> Attempt:
    """``attempt`` with ``notes`` added to its answer's detail (a cell without an answer is judged by the
    runner from how it ended; its notes are lost with it)."""
    if notes and attempt.answer is not None:
        detail = attempt.answer.get("detail")
        attempt.answer["detail"] = "; ".join([detail, *notes] if detail else notes)
    return attempt


def _absorb_written(attempt: Attempt, events_path: str) -> None:
    """Fold in what the kernel wrote to ``events_path`` before it died or hung (iopub may have lost it)."""
    if not os.path.exists(events_path):
        return
    with open(events_path) as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the last line, cut short by the death
            if event.get("event") != "result":
                attempt.absorb(event)
