"""The kernel context, harness side: cells run in a real IPython kernel, as in a notebook.

One kernel (ipykernel, driven with jupyter_client) per run, reused across
cells: start-up is paid once, and that of each kernel replacing one a cell broke
is mostly saved too: kernels are forked from a zygote that has imported
ipykernel and distributed (picklematrix.run.kernelzygote). For each cell the harness executes, in order,
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

import hmac
import json
import os
import queue
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field

from picklematrix import outcomes as oc
from picklematrix.run.attempt import CLOCK_EVENTS, CONNECT_ALLOWANCE, Attempt, compute_wait
from picklematrix.run.inkernel import KERNEL_MARK
from picklematrix.run.kernelzygote import KernelZygote, can_fork
from picklematrix.run.methods import METHODS

# A fresh notebook, when the kernel is not ready for the case (its first case, a new kernel, a case after
# which its compute cell could not prepare one): the namespace cleared (what ``%reset -f`` does, without the
# ``from __future__`` flags an earlier case left; see picklematrix.run.inkernel.kernel_prepare), then ``Client``
# and the user's ``client``. (No value is displayed: the case's namespace holds only ``Client`` and ``client``,
# as a notebook's would.)
PREPARE_CELL = (
    "import picklematrix.run.inkernel\n"
    "picklematrix.run.inkernel.kernel_prepare_cell({address!r}, {default!r}, keep={keep!r})"
)
# After the case's own cell: the compute method runs inside the kernel; once the result is out, the same cell
# checks the process's global state and prepares the next case's notebook (``then``), so that a case costs
# two notebook cells: its own and this one.
COMPUTE_CELL = (
    "import picklematrix.run.inkernel as _picklematrix_inkernel\n"
    "_picklematrix_inkernel.kernel_compute({method!r}, case_id={case!r}, timeout={timeout!r}, samples={samples!r},\n"
    "                                      events_path={events_path!r}, then={then!r})"
)


def names_client(source: str) -> bool:
    """Whether a case's code names a client at all (``client``, ``get_client``, ``Client``, ...), in any of its
    functions and classes: only a case that does not may leave its notebook's client to the next case. (Code
    that does not compile names one, for safety.)"""
    try:
        code = compile(source, "<case>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return True
    todo = [code]
    while todo:
        code = todo.pop()
        for name in (*code.co_names, *code.co_varnames, *code.co_freevars, *code.co_cellvars):
            if "client" in name.lower():
                return True
        todo.extend(c for c in code.co_consts if hasattr(c, "co_names"))
    return False


# How often the harness, waiting for a cell that prints nothing, looks whether the kernel died and reads the
# clock events it wrote (a dead kernel is seen this late: it says nothing).
POLL = 0.1

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

    def __init__(self, python: str = sys.executable, startup_timeout: float = 60, fork: bool = True):
        self.python = python
        # Kernels forked from a zygote (picklematrix.run.kernelzygote), started with the first; False: launched
        # (``fork=False``, or once the zygote failed).
        self._zygote: KernelZygote | None | bool = None if fork else False
        self.zygote_note: str | None = None  # why kernels are launched after all, if the zygote failed
        self.startup_timeout = startup_timeout
        self.tmp = tempfile.mkdtemp(prefix="picklematrix-kernel-")  # mode 0700: private
        # A Unix socket's path has at most 107 bytes; a long TMPDIR gets a short directory for them.
        self.sockets = self.tmp if len(self.tmp) <= _MAX_SOCKET_DIR else tempfile.mkdtemp(prefix="pmk-", dir="/tmp")
        self.km = None
        self.kc = None
        self.iopub: IOPub | None = None
        self.ready = False
        self._launched_at = 0.0
        self.starts = 0
        self._launches = 0  # kernels launched, a spare included: each gets sockets and a connection file of its own
        # Once a kernel had to be replaced (a cell hung or killed it), the next one is launched ahead: a spare,
        # (km, kc, launched_at), idle until the next replacement takes it.
        self._spare: tuple | None = None
        self._keep_spare = False
        self.startup_seconds: list = []
        # the last cell run in this kernel, "case [method]": the one to blame for a kernel that dies or hangs
        # before the next cell starts, while it is being cleared up
        self.previous: str | None = None
        # why the kernel was replaced outside a cell of its own (a death found between cells), for the next cell
        self.note: str | None = None
        # the global-state detector's price: its seconds per cell, and the replacements it asked for
        self.detector_seconds: list = []
        self.replaced_for_globals = 0
        # (address, default) of the notebook the last cell prepared for the next case (see inkernel.kernel_after);
        # None: the next case's cell runs the preparing cell first
        self.prepared: tuple | None = None
        # whether the notebook's client may pass to the next case (the last case named no client)
        self.keep = True
        # how many cases found the notebook prepared, and how many of those were given the previous case's client
        self.prepared_ahead = 0
        self.clients_kept = 0
        self._sent: dict = {}

    def _spec_dir(self) -> str:
        spec_dir = os.path.join(self.tmp, "kernels", "picklematrix")
        os.makedirs(spec_dir, exist_ok=True)
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            # the history database in memory (IPython's own setting): nothing reads it, and each cell's write to
            # a file cost a millisecond
            json.dump({"argv": [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                                "--HistoryManager.hist_file=:memory:"],
                       "display_name": "picklematrix", "language": "python"}, f)
        return os.path.dirname(spec_dir)

    def start(self):
        self.launch()
        self.wait_ready()

    def launch(self):
        """Start a kernel process and its channels (or take the spare); ``wait_ready`` waits for it to answer."""
        spare, self._spare = self._spare, None
        if spare is not None and not spare[0].is_alive():
            _shut(*spare[:2])
            spare = None
        self.km, self.kc, self._launched_at = spare or self._spawn()
        self.iopub = IOPub.of(self.kc)
        if spare is not None:
            self._launched_at = time.perf_counter()  # its startup_seconds: what the run still waited for it
        self.starts += 1
        self.ready = False
        self.prepared = None
        self._sent = {}  # {message id: its messages read so far} of each cell sent and not yet collected
        if self._keep_spare:
            self._spare = self._spawn()

    def _spawn(self) -> tuple:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        launched_at = time.perf_counter()
        self._launches += 1
        ksm = KernelSpecManager(kernel_dirs=[self._spec_dir()])
        km = KernelManager(kernel_name="picklematrix", kernel_spec_manager=ksm)
        km.transport = "ipc"
        km.ip = os.path.join(self.sockets, f"k{self._launches}")  # sockets <ip>-1 ... <ip>-5
        km.connection_file = os.path.join(self.tmp, f"kernel-{self._launches}.json")
        env = dict(os.environ)
        env.update(
            IPYTHONDIR=os.path.join(self.tmp, "ipython"),  # its own profile
            JUPYTER_RUNTIME_DIR=os.path.join(self.tmp, "runtime"),
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        if self._zygote is not False and can_fork(km.kernel_spec.argv, self.python):
            try:
                if self._zygote is None:
                    self._zygote = KernelZygote(self.python, env, self.tmp)
                km.kernel_id = str(uuid.uuid4())
                km.provisioner = self._zygote.provisioner(km)
                km.start_kernel(env=env, cwd=self.tmp)
            except OSError as e:
                # launched from now on; the kernel manager that failed is dropped for a new one
                self.zygote_note = f"the kernels' zygote failed ({e}); kernels are launched"
                if isinstance(self._zygote, KernelZygote):
                    self._zygote.close()
                self._zygote = False
                return self._spawn()
        else:
            km.start_kernel(env=env, cwd=self.tmp)
        kc = km.client()
        kc.start_channels()
        return km, kc, launched_at

    def wait_ready(self):
        try:
            _wait_for_ready(self.km, self.kc, self.iopub, self.startup_timeout)
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
        _shut(self.km, self.kc)
        self.km = self.kc = self.iopub = None
        self.ready = False

    def replace(self):
        """A new kernel for the next cell. Not waited for here: it starts while the harness goes on
        (the next cell is usually a script cell); ``ensure`` waits when a kernel cell needs it. From the first
        replacement on, the one after it is launched ahead (a cell that hangs or kills a kernel often has
        others beside it: the same case by the other methods)."""
        self.stop()
        self._keep_spare = True
        self.launch()

    def run_cell(self, case, method: str, *, address: str, samples: int, then: bool | None = None,
                 on_result=None, before_compute=None, named: bool | None = None, together: bool = True) -> Attempt:
        """Run one cell of ``case`` by ``method`` as a notebook would: the case's cell, then the compute cell;
        the preparing cell (``client`` for the scheduler at ``address``) first only when the cell before did not
        leave the notebook ready. A cell that wedges or kills the kernel costs that cell: the kernel is replaced.

        ``then``: whether the next kernel cell's client is dask's default scheduler (its method's), None when
        no kernel cell follows: the compute cell prepares its notebook once this one's result is out.
        ``on_result()`` is called as soon as the result is in, while the kernel finishes the cell;
        ``before_compute()`` before the compute cell. ``named``: whether the case's code names a client (see
        names_client; None: found out here). ``together``: the two cells are sent together (see below); else
        the compute cell once the case's has ended."""
        retry = dict(address=address, samples=samples, then=then, on_result=on_result, before_compute=before_compute,
                     named=named, together=False)
        first_note = self.note
        attempt = Attempt()
        this = f"{case.case_id} [{method}]"

        def step(sent, timeout, what, **options) -> ExecuteResult:
            reply = self._collect(sent, timeout, **options)
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

        previous, self.previous = self.previous, this
        notes = [self.note] if self.note else []
        self.note = None
        default = METHODS[method].default_client
        prepared, self.prepared = self.prepared, None
        if prepared == (address, default):
            self.prepared_ahead += 1
        else:
            reply = self._prepare(address, default, previous, notes)
            for event in reply.events:
                attempt.absorb(event)
            if reply.status in ("timeout", "died"):
                self.replace()
            elif reply.status == "error":
                attempt.fail({"type": reply.ename, "message": reply.evalue}, "preparing the notebook failed")
            if ended(reply, "while preparing the notebook") or reply.status == "error":
                return _noted(attempt, notes)
        # The case's cell and the compute cell are sent together, as a notebook's "run all" sends its cells:
        # the kernel runs the compute cell as soon as the case's is done, without a round trip to the harness.
        # (The compute cell does not compute after a case's cell that raised: see inkernel.kernel_compute.)
        case_cell = self._send(case.source)
        # what the cell after this one starts from: this notebook's client, unless this case named one
        self.keep = not (names_client(case.source) if named is None else named)
        after = None if then is None else (address, then, self.keep)
        events_path = os.path.join(self.tmp, "events.jsonl")
        if os.path.exists(events_path):
            os.unlink(events_path)

        def send_compute() -> str:
            if before_compute is not None:
                before_compute()
            return self._send(COMPUTE_CELL.format(method=method, case=case.case_id, timeout=case.timeout,
                                                  samples=samples, events_path=events_path, then=after))

        compute_cell = send_compute() if together else None
        reply = step(case_cell, case.timeout + CONNECT_ALLOWANCE, "cell")
        if reply.status == "died" and together:
            # Which cell killed the kernel cannot be told: one that dies in the compute cell (os._exit in a task
            # run locally) may never have sent the case's cell's reply, which its I/O thread still held. The two
            # cells run again in a fresh kernel (step replaced it), the compute cell sent once the case's has
            # ended: the death is then the cell's that died.
            self.previous, self.note = previous, first_note
            self.ensure()
            return self.run_cell(case, method, **retry)
        if ended(reply, "while running the case's cell"):
            return _noted(attempt, notes)
        if compute_cell is None:
            compute_cell = send_compute()
        if reply.status == "error":
            failure = {"type": reply.ename, "message": reply.evalue}
            if reply.ename == "NotImplementedError":
                attempt.fail(failure, "cell raised NotImplementedError", outcome=oc.NOT_APPLICABLE)
            else:
                attempt.fail(failure, "the cell itself raised before any compute call")
            # the compute cell only checks what the case changed, and prepares the next notebook
            check = self._collect(compute_cell, CONNECT_ALLOWANCE)
            if check.status in ("timeout", "died"):
                notes.append(f"the kernel {'died' if check.status == 'died' else 'hung'} after the case's cell; "
                             "it is replaced")
                self.replace()
            else:
                notes.extend(self._after(check.events, after))
            return _noted(attempt, notes)

        def on_event(event):
            if event.get("event") == "result" and on_result is not None:
                on_result()

        reply = step(compute_cell, CONNECT_ALLOWANCE, "compute", on_event=on_event, events_path=events_path,
                     # each compute call (and sample) gets the method's wait; once the result is out, what the
                     # cell does next (the global-state check, the next notebook) gets what a preparing cell does
                     clocks={**dict.fromkeys(CLOCK_EVENTS, compute_wait(case, method)), "result": CONNECT_ALLOWANCE})
        if reply.status in ("timeout", "died") and attempt.answer is not None:
            # The answer is in: the kernel died or hung clearing up after the case (a __del__ of its objects, when
            # its namespace was dropped). The case's answer stands; the next cell says whom the death belongs to.
            self.note = self._cleared_up(reply.status, this)
            _absorb_written(attempt, events_path)
        elif ended(reply, "during the compute call"):
            _absorb_written(attempt, events_path)
        elif reply.status == "ok":
            notes.extend(self._after(reply.events, after))
        return _noted(attempt, notes)

    def _prepare(self, address: str, default: bool, previous: str | None, notes: list) -> ExecuteResult:
        """Execute the preparing cell. It first clears up after the previous case (its namespace dropped: a
        __del__ of its runs then). A kernel that dies or hangs there was broken by that case, not by this one:
        this cell gets a fresh kernel, and says whom the death belongs to (in ``notes``)."""
        prepare = PREPARE_CELL.format(address=address, default=default, keep=self.keep)
        reply = self.execute(prepare, CONNECT_ALLOWANCE)
        if reply.status in ("timeout", "died") and previous is not None:
            notes.append(self._cleared_up(reply.status, previous))
            self.replace()
            self.ensure()
            reply = self.execute(PREPARE_CELL.format(address=address, default=default, keep=True), CONNECT_ALLOWANCE)
        if reply.status == "ok" and _prepared(reply.events):
            self.clients_kept += bool(_prepared(reply.events).get("kept"))
        return reply

    @staticmethod
    def _cleared_up(status: str, culprit: str) -> str:
        return (f"the kernel {'died' if status == 'died' else 'hung'} while clearing up after {culprit}; "
                "this cell ran in a fresh kernel")

    def _after(self, events, after: tuple | None) -> list:
        """What the end of a case's last cell says: the global-state verdict (notes for the cell's detail), and
        whether the next case's notebook is ready."""
        notes = self._globals_changed(events)
        prepared = _prepared(events)
        if not notes and after is not None and prepared is not None and "error" not in prepared:
            self.prepared = (after[0], after[1])
            self.clients_kept += bool(prepared.get("kept"))
        return notes

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
        if self._spare is not None:
            _shut(*self._spare[:2])
            self._spare = None
        if isinstance(self._zygote, KernelZygote):
            self._zygote.close()
            self._zygote = None
        shutil.rmtree(self.tmp, ignore_errors=True)
        shutil.rmtree(self.sockets, ignore_errors=True)

    def execute(self, code: str, timeout: float, **options) -> ExecuteResult:
        """Run ``code`` as a notebook cell; collect marked events as they are printed (see _collect)."""
        return self._collect(self._send(code), timeout, **options)

    def _send(self, code: str) -> str:
        """Ask the kernel to run ``code`` as a notebook cell, after those asked before; its message id."""
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        self._sent[msg_id] = []
        return msg_id

    def _collect(self, msg_id: str, timeout: float, *, clocks: dict | None = None, on_event=None,
                 events_path: str | None = None) -> ExecuteResult:
        """Wait for the cell sent as ``msg_id`` to end; collect its marked events as they are printed.

        The cell gets ``timeout`` seconds; a marked event whose kind is in
        ``clocks`` (a compute call starting) gives it that many seconds from
        when it happened (its ``at``: the machine's monotonic clock, which every
        process shares) on. ``on_event(event)`` sees each marked event as it
        comes. The kernel need not flush such an event at once (a hand-over to
        its IO thread, then on to here: milliseconds a cell), nor can it when
        its process is stopped: while it prints nothing, the harness reads the
        clock events the kernel wrote to ``events_path`` (see
        picklematrix.run.inkernel.kernel_compute) every ``POLL`` seconds, and
        before the wait runs out.
        """
        clocks = clocks or {}
        out = ExecuteResult()
        iopub = self.iopub
        # messages of this cell that came while the harness waited for the one before it
        early = self._sent.pop(msg_id, [])
        deadline = time.monotonic() + timeout
        clock = float("-inf")  # when the clock event that set ``deadline`` happened

        def restart(at: float, kind: str) -> None:
            nonlocal deadline, clock
            if at > clock:
                deadline, clock = at + clocks[kind], at

        def written() -> None:
            if events_path:
                for at, kind in _clock_events(events_path, clocks):
                    restart(at, kind)

        idle = False
        partial = ""
        while not idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                written()
                remaining = deadline - time.monotonic()
            if remaining <= 0:
                out.status = "timeout"
                return out
            try:
                msg = early.pop(0) if early else iopub.get(min(remaining, POLL))
            except queue.Empty:
                if not self.km.is_alive():
                    out.status = "died"
                    return out
                written()
                continue
            parent = msg.get("parent_header", {}).get("msg_id")
            if parent != msg_id:
                if parent in self._sent:  # a cell sent after this one
                    self._sent[parent].append(msg)
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
                        if event.get("event") in clocks:
                            restart(event.get("at", time.monotonic()), event["event"])
                        if on_event is not None:
                            on_event(event)
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


class IOPub:
    """The kernel's IOPub messages, read straight off its client's socket.

    jupyter_client's blocking client runs an asyncio event loop for every message it gets, and parses every
    date in its headers (dateutil): py-spy found about half of the harness's own time in a kernel cell
    there. The harness reads a message's type, its parent's id and its content, as jupyter_client gives
    them (``msg_type``, ``parent_header``, ``content``), from a synchronous shadow of the same ZMQ socket;
    the signature is checked as jupyter_client checks it."""

    def __init__(self, socket, session):
        self.socket, self.session = socket, session

    @classmethod
    def of(cls, kc) -> "IOPub":
        """The IOPub channel of the kernel client ``kc`` (its channels started)."""
        import zmq

        return cls(zmq.Socket.shadow(kc.iopub_channel.socket.underlying), kc.session)

    def get(self, timeout: float) -> dict:
        """The next message; queue.Empty after ``timeout`` seconds without one."""
        if not self.socket.poll(int(timeout * 1000)):
            raise queue.Empty
        _, frames = self.session.feed_identities(self.socket.recv_multipart())
        if self.session.auth is not None and not hmac.compare_digest(frames[0], self.session.sign(frames[1:5])):
            raise ValueError("a message on the kernel's IOPub channel has an invalid signature")
        header = json.loads(frames[1])
        return {"header": header, "msg_type": header["msg_type"], "parent_header": json.loads(frames[2]),
                "content": json.loads(frames[4])}


# How long a kernel_info request is waited for before another is sent (jupyter_client's is a second: a kernel
# forked ready in a tenth of one waited the rest for a request whose IOPub message it had sent unheard).
READY_ASK_EVERY = 0.2


def _wait_for_ready(km, kc, iopub: IOPub, timeout: float) -> None:
    """Until the kernel answers on its shell channel and its output reaches the harness: a ``kernel_info``
    request's reply, and a message of that request's on IOPub (whose subscription ZMQ joins late: a cell sent
    before it has joined would lose its first output). jupyter_client's ``wait_for_ready`` does the same, then
    waits 0.2 s more for IOPub to fall quiet (each cell's own messages are told by their parent here, so
    nothing needs to be flushed). A request's messages on IOPub that left before the subscription had joined are
    lost: the request is made again every ``READY_ASK_EVERY`` seconds. Raises RuntimeError as that one does."""
    deadline = time.monotonic() + timeout
    while True:
        msg_id = kc.kernel_info()
        replied = heard = False
        asked = time.monotonic()
        while not (replied and heard) and time.monotonic() - asked < READY_ASK_EVERY:
            if not km.is_alive():
                raise RuntimeError("the kernel died before it answered")
            try:
                if not replied:
                    msg = kc.get_shell_msg(timeout=0.1)
                    replied = msg.get("parent_header", {}).get("msg_id") == msg_id
                else:
                    msg = iopub.get(0.1)
                    heard = msg.get("parent_header", {}).get("msg_id") == msg_id
            except queue.Empty:
                pass
        if replied and heard:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the kernel did not answer within {timeout:g}s")


def _shut(km, kc) -> None:
    """End a kernel at once: its channels, then its process."""
    if kc is not None:
        try:
            kc.stop_channels()
        except Exception:
            pass
    if km is not None:
        try:
            km.shutdown_kernel(now=True)
        except Exception:
            pass


def _noted(attempt: Attempt, notes: list) -> Attempt:
    """``attempt`` with ``notes`` added to its answer's detail (a cell without an answer is judged by the
    runner from how it ended; its notes are lost with it)."""
    if notes and attempt.answer is not None:
        detail = attempt.answer.get("detail")
        attempt.answer["detail"] = "; ".join([detail, *notes] if detail else notes)
    return attempt


def _clock_events(events_path: str, clocks: dict) -> list:
    """(at, kind) of each clock event the kernel wrote to ``events_path``, in order."""
    found = []
    try:
        with open(events_path) as f:
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if event.get("event") in clocks and "at" in event:
                    found.append((event["at"], event["event"]))
    except OSError:
        pass
    return found


def _prepared(events) -> dict | None:
    """The "prepared" event among a cell's events (see picklematrix.run.inkernel.kernel_prepare), if any."""
    return next((e for e in reversed(events) if e.get("event") == "prepared"), None)


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
