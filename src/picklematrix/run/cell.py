"""One cell's own side: define the case as a script's top level, run one compute method, classify.

``child_main`` is a script-context cell's process (picklematrix.run.script starts
it); ``compute_phase`` also runs in the kernel (picklematrix.run.inkernel), and
``define_cell`` in asv's benchmark processes (picklematrix.run.suite).
Runs inside every matrix environment. The harness process never executes a
case: this module runs in a process of its own per cell, so a case that hangs,
calls ``os._exit`` or corrupts interpreter state costs that one cell only.

Protocol: the child sends dict events over a ``multiprocessing`` connection as
they happen (``{"event": "submitted"}`` / ``{"event": "sent", ...}`` /
``{"event": "received"}``), so that the parent still knows where the work went
if the child dies, then one
final ``{"event": "result", ...}``.
"""

from __future__ import annotations

import _thread
import functools
import logging
import operator
import os
import sys
import time
import types
import weakref

from picklematrix import outcomes as oc
from picklematrix.run.culprit import culprit_path
from picklematrix.run.methods import METHODS, ComputeTimeout
from picklematrix.run.observe import PickleLogCapture, Tap
from picklematrix.run.selection import MIN_SAMPLES, SAMPLE_TIME


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


def connect_client(address: str, *, default: bool, timeout: float):
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
        "stage": None,
    }
    base.update(fields)
    return base


def _check(namespace, value):
    """(ok, failure, what): failure is the exception the case's own judging raised, ``what`` names it.

    A ``check`` that raises, or an ``expected`` whose ``==`` cannot give a truth value (numpy arrays), is
    a broken case: it says nothing about the value, so it is not reported as a value that did not match.
    """
    if "check" in namespace and callable(namespace["check"]):
        what = "the case's check() raised"
        try:
            return bool(namespace["check"](value)), None, what
        except Exception as e:
            return False, e, what
    what = "comparing the value with the case's `expected` raised"
    try:
        return bool(value == namespace["expected"]), None, what
    except Exception as e:  # e.g. numpy arrays compared with ==
        return False, e, what


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

    capture = PickleLogCapture()
    pickle_logger = logging.getLogger("distributed.protocol")
    pickle_logger.addHandler(capture)
    tap = Tap(client, emit)
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
                               stage=oc.STAGE_TASK if tap.sent else None,
                               graph_bytes=tap.graph_bytes if tap.sent else None, detail=str(e))
            outcome, stage = oc.classify(e, submitted=tap.submitted or targets_cluster, sent=tap.sent,
                                         erred=tap.erred)
            cause = oc.describe_root_cause(e, capture.exceptions)
            if stage == oc.STAGE_CLIENT_PICKLE:
                # The graph is still here: where in it is the object that would not pickle? (A path from
                # ``result`` reads better than Python 3.13's notes, which stay where it is not found.)
                path = culprit_path(ns["result"], oc.root_cause(e, capture.exceptions))
                if path is not None:
                    cause["path"] = path
            return _result(case_id, method_name, context, outcome=outcome, root_cause=cause, stage=stage,
                           seconds=elapsed, samples=[elapsed], graph_bytes=tap.graph_bytes if tap.sent else None,
                           detail=f"{type(e).__name__} from {method_name}")
        times.append(time.perf_counter() - start)
        # the value is here: a process that dies from now on dies using it, not receiving it
        emit({"event": "received"})
        submitted, sent, graph_bytes = tap.submitted, tap.sent, tap.graph_bytes
        # The further samples time the method's call alone: where the work went is known by now,
        # and reporting it again (a message to the harness per step; a flushed print in a kernel)
        # would be timed with it.
        tap.remove()

        ok, check_failure, judging = _check(ns, value)
        cause = None
        if check_failure is not None:
            # the case is broken, whatever the value: blame the case, naming what in it failed
            outcome = oc.HARNESS_ERROR
            cause = oc.describe(check_failure)
            detail = oc.normalise(f"{judging} {cause['type']}: {cause['message']} "
                                  f"(on the value {_short_repr(value)}); fix the case")
        elif not submitted:
            # it returned a value without the cluster ever seeing the graph
            outcome = oc.RAN_LOCALLY
            detail = None if ok else oc.normalise(f"value {_short_repr(value)} does not match the cell's expectation")
        else:
            outcome = oc.PASS if ok else oc.WRONG_RESULT
            detail = None if ok else oc.normalise(f"value {_short_repr(value)} does not match the cell's expectation")

        # Further timing samples only for cells that worked on the cluster:
        # a failure's time is not a benchmark. asv's rule for how many (selection.REPEAT).
        if outcome == oc.PASS:
            for _ in range(samples - 1):
                if len(times) >= MIN_SAMPLES and time.perf_counter() - start > SAMPLE_TIME:
                    break
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


def run_cell(request: dict, conn, go=None) -> None:
    """Entry point of the child process for one script-context cell.

    ``go``: the end of a pipe on which the harness says when the process may connect its client ("connect")
    and when the cell may run ("go": connecting first if it has not). The harness forks a cell's process ahead,
    lets it connect once the cell before it has computed, and lets the cell's own code run only once that one's
    process has ended. Told nothing (the pipe closed: the cell will run in another process), it ends.

    Its client is not closed: the process ends (``child_main``) as soon as its answer is sent, and the
    scheduler drops a client whose connection closed, with every key it held, as ``Client.close`` would
    have it do. The close's round trips (about 10 ms) would be waited for by the next cell.
    """
    case_id = request["case"]
    method_name = request["method"]
    context = request.get("context", "script")
    method = METHODS[method_name]
    timeout = float(request["timeout"])

    main = _fresh_main_module(request["path"])
    word = _word(go)
    if word is None:
        return
    try:
        client = connect_client(request["scheduler"], default=method.default_client, timeout=min(timeout, 30))
    except Exception as e:
        if word == "go" or _word(go) == "go":
            conn.send({"event": "go"})
            conn.send(_result(case_id, method_name, context, root_cause=oc.describe(e),
                              detail="could not connect a client"))
        return
    _open_clients.append(client)  # (not closed: see above) referenced until the process ends
    if word != "go" and _word(go) != "go":
        return
    conn.send({"event": "go"})
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


_open_clients: list = []


def _word(go) -> str | None:
    """The harness's next word (see run_cell): "connect", "go", or None when it closed the pipe. Without a
    pipe, the cell runs at once."""
    if go is None:
        return "go"
    try:
        word = go.recv()
    except (EOFError, OSError):
        word = None
    if word != "connect":
        go.close()
    return word


def _short_repr(value, limit=200) -> str:
    try:
        text = repr(value)
    except Exception as e:
        text = f"<unrepresentable {type(value).__name__}: {type(e).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def child_main(request: dict, conn, log_path: str | None = None, go=None) -> None:
    """multiprocessing target: route output to a log file, run (when ``go`` says so: see run_cell), and leave
    fast."""
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        run_cell(request, conn, go)
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
