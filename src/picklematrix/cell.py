"""One cell, run in a child process: define the case, run one compute method, classify.

Runs inside every matrix environment. The harness process never executes a
case: this module runs in a process of its own per cell, so a case that hangs,
calls ``os._exit`` or corrupts interpreter state costs that one cell only.

Protocol: the child sends dict events over a ``multiprocessing`` connection as
they happen (``{"event": "submitted"}`` / ``{"event": "sent", ...}``), so
that the parent still knows where the work went if the child dies, then one
final ``{"event": "result", ...}``.
"""

from __future__ import annotations

import _thread
import functools
import logging
import operator
import os
import sys
import threading
import time
import types
import weakref

from . import outcomes as oc
from .methods import METHODS, ComputeTimeout


class _PickleLogCapture(logging.Handler):
    """Collects the exceptions distributed logs while pickling ("Failed to serialize")."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.exceptions = []

    def emit(self, record):
        if record.exc_info and record.exc_info[1] is not None:
            self.exceptions.append(record.exc_info[1])


def _nbytes(frame) -> int:
    try:
        return memoryview(frame).nbytes
    except TypeError:
        return 0


def _graph_bytes(msg: dict) -> int:
    """Size of the serialized graph in an "update-graph" message, across distributed versions."""
    frames = []
    if "graph_frames" in msg:  # distributed <= 2024.x: serialize(ToPickle(dsk))
        frames = list(msg["graph_frames"])
    for key in ("expr_ser", "graph"):  # newer: Serialized(header, frames)
        ser = msg.get(key)
        if ser is not None and hasattr(ser, "frames"):
            frames.extend(ser.frames)
    return sum(_nbytes(f) for f in frames)


class _Tap:
    """Observes, on the client, whether work was submitted to and sent to the scheduler."""

    def __init__(self, client, emit):
        self.submitted = False
        self.sent = False
        self.graph_bytes = 0
        self.emit = emit
        self.client = client
        graph_to_futures = client._graph_to_futures
        send = client._send_to_scheduler

        @functools.wraps(graph_to_futures)
        def _graph_to_futures(*args, **kwargs):
            if not self.submitted:
                self.submitted = True
                self._event({"event": "submitted"})
            return graph_to_futures(*args, **kwargs)

        @functools.wraps(send)
        def _send_to_scheduler(msg):
            if isinstance(msg, dict) and msg.get("op") == "update-graph":
                self.sent = True
                self.graph_bytes += _graph_bytes(msg)
                self._event({"event": "sent", "graph_bytes": self.graph_bytes})
            return send(msg)

        # Instance attributes shadow the methods for this client only.
        client._graph_to_futures = _graph_to_futures
        client._send_to_scheduler = _send_to_scheduler

    def remove(self):
        for name in ("_graph_to_futures", "_send_to_scheduler"):
            self.client.__dict__.pop(name, None)

    def _event(self, event):
        try:
            self.emit(event)
        except Exception:
            pass


def _fresh_main_module(path: str) -> types.ModuleType:
    """A new ``__main__`` module, as ``python path`` would make it."""
    sys.modules.pop("__mp_main__", None)  # left by multiprocessing; a script has none
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__loader__ = None
    main.__spec__ = None
    main.__builtins__ = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)
    sys.modules["__main__"] = main
    sys.argv = [path]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    return main


class _Steps(list):
    """A list that can be weakly referenced: its death says the thread finished."""


class CellExited(Exception):
    """The cell's top-level code raised SystemExit (e.g. called sys.exit())."""


def run_top_level(code, namespace) -> BaseException | None:
    """Execute ``code`` as the top-level code of a script: its frame has no caller.

    ``python cell.py`` runs the module frame with ``f_back is None``, and
    libraries inspect that: pydantic <= 2.8 keeps the defining frame's locals
    unless ``frame.f_back is None``. A plain ``exec`` from harness code would
    give the cell's frame the harness as a caller. So the code runs on a fresh
    thread whose only callables are C functions (``list``, ``map``,
    ``methodcaller``, ``partial``, ``exec``, ``lock.release``): no Python frame
    sits under the cell's. Returns the exception the cell raised, if any.
    """
    done = _thread.allocate_lock()
    done.acquire()
    ended = _thread.allocate_lock()
    ended.acquire()
    failure = []
    thread_ident = [None]
    previous_hook = sys.unraisablehook

    def hook(unraisable):
        # _thread reports an exception that escapes the thread's function here
        # (SystemExit excepted: it is dropped silently).
        if unraisable.exc_value is not None and _thread.get_ident() == thread_ident[0]:
            failure.append(unraisable.exc_value)
        else:
            previous_hook(unraisable)

    steps = _Steps([functools.partial(exec, code, namespace), done.release])
    # The thread's arguments are the only owners of ``steps``: they are freed
    # when the thread function has finished, however it finished.
    watch = weakref.ref(steps, lambda _ref: ended.release())
    sys.unraisablehook = hook
    try:
        thread_ident[0] = _thread.start_new_thread(
            list, (map(operator.methodcaller("__call__"), steps),)
        )
        del steps
        ended.acquire()
    finally:
        sys.unraisablehook = previous_hook
    del watch
    if failure:
        return failure[0]
    if not done.acquire(blocking=False):
        return CellExited("the cell raised SystemExit at top level")
    return None


def define_cell(source: str, path: str, client) -> dict:
    """Run a cell's code as a script's top level with ``client`` bound; its namespace.

    Raises what the cell raised (``NotImplementedError`` means not applicable).
    """
    main = _fresh_main_module(path)
    main.__dict__["client"] = client
    code = compile(source, path, "exec", dont_inherit=True)
    failure = run_top_level(code, main.__dict__)
    if failure is not None:
        raise failure
    return main.__dict__


def _connect(address: str, *, default: bool, timeout: float):
    from distributed import Client

    return Client(address, set_as_default=default, timeout=timeout)


async def _nothing():
    pass


def settle(client) -> None:
    """Let the client's event loop run what is queued on it, such as the release of the last call's futures.

    A finished call's futures are released from the client's loop (``Future.release``
    queues it there). A sample that called the cell again before that ran could
    find the previous result still held (the same graph has the same keys) and
    return it: it timed a lookup, not a compute. Seen with a 64 MB cell in the
    kernel: samples of 0.2 s instead of 0.9 s, and the late release left a task
    on the scheduler for seconds after the cell. Run before every timing sample
    but the first, outside the timed call.
    """
    client.sync(_nothing)


def _result(case_id, method, context, **fields):
    base = {
        "event": "result",
        "case": case_id,
        "method": method,
        "context": context,
        "outcome": oc.HARNESS_ERROR,
        "root_cause": None,
        "seconds": None,
        "samples": [],
        "graph_bytes": None,
        "detail": None,
    }
    base.update(fields)
    return base


def _check(namespace, value):
    """(ok, failure) where failure is the exception a ``check`` raised."""
    if "check" in namespace and callable(namespace["check"]):
        try:
            return bool(namespace["check"](value)), None
        except Exception as e:
            return False, e
    ok = value == namespace["expected"]
    try:
        return bool(ok), None
    except Exception as e:  # e.g. numpy arrays compared with ==
        return False, e


def compute_phase(ns: dict, client, method_name: str, *, case_id: str, context: str, timeout: float,
                  samples: int, emit) -> dict:
    """Run one compute method on the cell's ``result`` and classify what happened.

    ``emit(event)`` reports progress as it happens ("compute-start",
    "submitted", "sent"), so that the harness still knows where the work went
    if this process dies. Returns the final result event.
    """
    method = METHODS[method_name]
    if "result" not in ns:
        return _result(case_id, method_name, context, detail="cell did not bind `result`")
    if "expected" not in ns and not callable(ns.get("check")):
        return _result(case_id, method_name, context, detail="cell binds neither `expected` nor `check(value)`")

    capture = _PickleLogCapture()
    pickle_logger = logging.getLogger("distributed.protocol")
    pickle_logger.addHandler(capture)
    tap = _Tap(client, emit)
    try:
        targets_cluster = method.targets_cluster(client)
        emit({"event": "compute-start", "targets_cluster": targets_cluster})
        times = []
        start = time.perf_counter()
        try:
            value = method.call(ns["result"], client, timeout)
        except BaseException as e:  # noqa: BLE001 - SystemExit from a local task counts too
            elapsed = time.perf_counter() - start
            if isinstance(e, ComputeTimeout):
                return _result(case_id, method_name, context, outcome=oc.TIMEOUT, seconds=elapsed,
                               graph_bytes=tap.graph_bytes if tap.sent else None, detail=str(e))
            outcome = oc.classify_failure(e, submitted=tap.submitted or targets_cluster, sent=tap.sent)
            cause = oc.root_cause(e, capture.exceptions)
            return _result(case_id, method_name, context, outcome=outcome, root_cause=oc.describe(cause),
                           seconds=elapsed, samples=[elapsed], graph_bytes=tap.graph_bytes if tap.sent else None,
                           detail=f"{type(e).__name__} from {method_name}")
        times.append(time.perf_counter() - start)
        submitted, sent, graph_bytes = tap.submitted, tap.sent, tap.graph_bytes
        # The further samples time the method's call alone: where the work went is known by now,
        # and reporting it again (a message to the harness per step; a flushed print in a kernel)
        # would be timed with it.
        tap.remove()

        ok, check_failure = _check(ns, value)
        if not submitted:
            # it returned a value without the cluster ever seeing the graph
            outcome = oc.RAN_LOCALLY
        else:
            outcome = oc.PASS if ok else oc.WRONG_RESULT
        cause = oc.describe(check_failure) if check_failure is not None else None
        detail = None if ok else f"value {_short_repr(value)} does not match the cell's expectation"

        # Further timing samples only for cells that worked on the cluster:
        # a failure's time is not a benchmark.
        if outcome == oc.PASS:
            for _ in range(samples - 1):
                # each sample gets the case's whole timeout: the harness restarts its clock here
                emit({"event": "sample"})
                settle(client)
                t0 = time.perf_counter()
                method.call(ns["result"], client, timeout)
                times.append(time.perf_counter() - t0)
        times_sorted = sorted(times)
        return _result(case_id, method_name, context, outcome=outcome, root_cause=cause,
                       seconds=times_sorted[len(times_sorted) // 2], samples=times,
                       graph_bytes=graph_bytes if sent else None, detail=detail)
    finally:
        pickle_logger.removeHandler(capture)
        tap.remove()


def definition_failure(failure: BaseException, case_id, method_name, context) -> dict:
    if isinstance(failure, NotImplementedError):
        return _result(case_id, method_name, context, outcome=oc.NOT_APPLICABLE,
                       root_cause=oc.describe(failure), detail="cell raised NotImplementedError")
    return _result(case_id, method_name, context, root_cause=oc.describe(failure),
                   detail="the cell itself raised before any compute call")


def run_cell(request: dict, conn) -> None:
    """Entry point of the child process for one script-context cell."""
    case_id = request["case"]
    method_name = request["method"]
    context = request.get("context", "script")
    method = METHODS[method_name]
    timeout = float(request["timeout"])

    main = _fresh_main_module(request["path"])
    try:
        client = _connect(request["scheduler"], default=method.default_client, timeout=min(timeout, 30))
    except Exception as e:
        conn.send(_result(case_id, method_name, context, root_cause=oc.describe(e),
                          detail="could not connect a client"))
        return
    try:
        main.__dict__["client"] = client
        try:
            # dont_inherit: this module's ``from __future__ import annotations``
            # must not leak into the cell; ``python cell.py`` has no such flag.
            code = compile(request["source"], request["path"], "exec", dont_inherit=True)
        except SyntaxError as e:
            conn.send(_result(case_id, method_name, context, root_cause=oc.describe(e),
                              detail="cell does not compile"))
            return
        failure = run_top_level(code, main.__dict__)
        if failure is not None:
            conn.send(definition_failure(failure, case_id, method_name, context))
            return
        conn.send(compute_phase(main.__dict__, client, method_name, case_id=case_id, context=context,
                                timeout=timeout, samples=max(1, int(request.get("samples", 1))),
                                emit=conn.send))
    finally:
        try:
            client.close(timeout=5)
        except Exception:
            pass


KERNEL_MARK = "\x1epicklematrix-event "

# The last kernel cell's client, closing in a thread of the kernel (see kernel_compute), and how long
# the next case's kernel_reset waits for that close (it gives ``close`` 5 s).
_closing: tuple | None = None
CLOSE_WAIT = 10.0


def kernel_reset() -> None:
    """Called by the harness inside a Jupyter kernel before each case: a fresh notebook.

    Waits until the previous case's ``client`` has closed (``kernel_compute``
    closes it in a thread), or closes it (a case that did not get as far as
    its compute cell), then does what ``%reset -f`` does
    (``InteractiveShell.reset(new_session=False)``: namespace, output cache,
    aliases) except its full ``gc.collect()``, which costs more than the rest of
    a cell (about 60 ms with dask, distributed and pydantic loaded); the
    interpreter's own collector still runs as it would in a notebook. Then it
    drops the ``from __future__`` flags an earlier case left: IPython keeps
    them for every later cell, ``%reset`` included.
    """
    import __future__
    import gc

    global _closing
    closed = None
    if _closing is not None:
        thread, closed = _closing
        _closing = None
        thread.join(CLOSE_WAIT)
    shell = get_ipython()  # noqa: F821 - only ever called inside an IPython kernel
    old = shell.user_ns.get("client")
    if old is not None and old is not closed and type(old).__module__.startswith("distributed"):
        try:
            old.close(timeout=5)
        except Exception:
            pass
    collect = gc.collect
    gc.collect = lambda generation=2: 0
    try:
        shell.reset(new_session=False)
    finally:
        gc.collect = collect
    for name in __future__.all_feature_names:
        shell.compile.flags &= ~getattr(__future__, name).compiler_flag


def kernel_compute(method_name: str, *, case_id: str, timeout: float, samples: int = 1,
                   events_path: str | None = None) -> None:
    """Called by the harness inside a Jupyter kernel, after the case's cell ran there.

    Events and the result go to stdout as marked JSON lines: the harness reads
    them from the kernel's iopub stream, as they are printed. They are also
    appended to ``events_path``: a write to a file is done when ``write``
    returns, while output on iopub is lost if the task kills the kernel
    before zmq sends it.
    """
    import json

    shell = get_ipython()  # noqa: F821 - only ever called inside an IPython kernel
    ns = shell.user_ns

    def emit(event):
        sys.__stdout__.flush()
        line = json.dumps(event, default=str)
        if events_path:
            with open(events_path, "a") as f:
                f.write(line + "\n")
        print(KERNEL_MARK + line, flush=True)

    client = ns.get("client")
    result = compute_phase(ns, client, method_name, case_id=case_id, context="kernel", timeout=timeout,
                           samples=samples, emit=emit)
    emit(result)
    # As the script context's process does once its result is sent, the client closes while the harness
    # checks the cluster: in a thread, so that this cell is done now. The next case's kernel_reset
    # waits for it before anything else runs in the kernel.
    global _closing

    def close():
        try:
            client.close(timeout=5)
        except Exception:
            pass

    thread = threading.Thread(target=close, name="picklematrix-close-client", daemon=True)
    thread.start()
    _closing = (thread, client)


def _short_repr(value, limit=200) -> str:
    try:
        text = repr(value)
    except Exception as e:
        text = f"<unrepresentable {type(value).__name__}: {type(e).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def child_main(request: dict, conn, log_path: str | None = None) -> None:
    """multiprocessing target: route output to a log file, run, and leave fast."""
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        run_cell(request, conn)
    except BaseException as e:  # noqa: BLE001 - the parent must always get an answer
        try:
            conn.send(_result(request["case"], request["method"], request.get("context", "script"),
                              root_cause=oc.describe(e), detail="harness failure in the cell process"))
        except Exception:
            pass
    finally:
        try:
            conn.close()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            # Skip interpreter teardown: threads a case left running must not
            # hold the cell open after its result is in.
            os._exit(0)
