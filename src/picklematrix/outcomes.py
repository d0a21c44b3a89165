"""The outcome vocabulary and how an exception becomes an outcome and a root cause.

Runs inside every matrix environment: standard library only, Python 3.10+.
Classification looks at exception *types* and at *where* they were raised (the
traceback's modules), never at message text: Python 3.13 reworded pickle errors.
"""

from __future__ import annotations

import os
import pickle
import re
import traceback

PASS = "pass"
WRONG_RESULT = "wrong-result"
SERIALIZE_ERROR = "serialize-error"
DESERIALIZE_ERROR = "deserialize-error"
TASK_ERROR = "task-error"
RAN_LOCALLY = "ran-locally"
TIMEOUT = "timeout"
WORKER_DIED = "worker-died"
NOT_APPLICABLE = "not-applicable"
HARNESS_ERROR = "harness-error"
CLIENT_DIED = "client-died"

OUTCOMES = (
    PASS,
    WRONG_RESULT,
    SERIALIZE_ERROR,
    DESERIALIZE_ERROR,
    TASK_ERROR,
    RAN_LOCALLY,
    TIMEOUT,
    WORKER_DIED,
    NOT_APPLICABLE,
    HARNESS_ERROR,
    # appended (code 10): a record made before it has no such code, and reads as it did
    CLIENT_DIED,
)

# asv can only store numbers: ``track_outcome`` returns these codes. The mapping
# is part of the results format; append, never renumber.
OUTCOME_CODES = {name: code for code, name in enumerate(OUTCOMES)}
CODE_OUTCOMES = {code: name for name, code in OUTCOME_CODES.items()}

# Outcomes that mean "the object did not survive the trip".
# Where along the trip a cell's failure happened (a cell's "stage"): the client pickles the graph, the
# scheduler or a worker unpickles it, the task runs, the worker pickles the result, the client unpickles it.
STAGE_CLIENT_PICKLE = "client-pickles-graph"
STAGE_CLUSTER_UNPICKLE = "cluster-unpickles-graph"
STAGE_TASK = "task-runs"
STAGE_WORKER_PICKLE = "worker-pickles-result"
STAGE_CLIENT_UNPICKLE = "client-unpickles-result"
# the value came back, and the client died using it (the case's check() ran code that came back broken)
STAGE_CLIENT_USE = "client-uses-result"
STAGES = (STAGE_CLIENT_PICKLE, STAGE_CLUSTER_UNPICKLE, STAGE_TASK, STAGE_WORKER_PICKLE, STAGE_CLIENT_UNPICKLE,
          STAGE_CLIENT_USE)

FAILURES = frozenset(
    {WRONG_RESULT, SERIALIZE_ERROR, DESERIALIZE_ERROR, TASK_ERROR, WORKER_DIED, CLIENT_DIED}
)

_SEP = os.sep


def _in_module(filename: str, *parts: str) -> bool:
    needle = _SEP + _SEP.join(parts)
    return needle in filename


def _frames(exc: BaseException) -> list[traceback.FrameSummary]:
    tb = exc.__traceback__
    if tb is None:
        return []
    return list(traceback.extract_tb(tb))


def exception_chain(exc: BaseException) -> list[BaseException]:
    """Every exception reachable through __cause__ and __context__, outermost first."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo.extend([e.__cause__, e.__context__])
    return seen


def innermost_cause(exc: BaseException) -> BaseException:
    """The exception that ended the last attempt.

    Follow explicit ``raise ... from`` links (a wrapper names what it wraps), and
    stop there: an implicit ``__context__`` is an *earlier* failure that was
    handled and then superseded. This is how distributed's pickling chain
    looks: stdlib pickle fails, cloudpickle is tried "during handling" of that
    failure and raises the error that counts.
    """
    seen = []
    while exc.__cause__ is not None and not any(exc.__cause__ is s for s in seen):
        seen.append(exc)
        exc = exc.__cause__
    return exc


# A memory address in a repr ("<Foo object at 0x7f115c3d9080>") differs from run to run; a root cause that
# carries one would make every diff of two runs' results show a change. Six or more hex digits: an address,
# not a small hex constant a message may mean.
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
ADDRESS_PLACEHOLDER = "0x\u2026"


# dask's keys end in a token made anew each run: a uuid (``delayed(f)(x)``, impure) or a 32-digit hash
_KEY_TOKEN = re.compile(r"-(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})\b")
# A cluster's processes listen on ports chosen anew each run (``tcp://127.0.0.1:39101``, the worker named in a
# KilledWorker): the port of a comm address goes, its scheme and host stay.
_COMM_PORT = re.compile(r"\b((?:tcp|tls|ws|wss|ucx|inproc)://(?:\[[0-9A-Fa-f:.]+\]|[\w.\-]+)):\d+")
PORT_PLACEHOLDER = ":\u2026"


def normalise(text: str | None) -> str | None:
    """``text`` with memory addresses replaced by ``0x…``, dask keys' tokens by ``-…`` and the ports of comm
    addresses by ``:…``: the same failure reads the same in every run."""
    if text is None:
        return None
    text = _ADDRESS.sub(ADDRESS_PLACEHOLDER, text)
    text = _COMM_PORT.sub(lambda m: m.group(1) + PORT_PLACEHOLDER, text)
    return _KEY_TOKEN.sub("-\u2026", text)


def describe(exc: BaseException) -> dict:
    """The root-cause record of ``exc``: its type, its message (addresses normalised) and, where Python
    says where in the object the error was met (3.13's pickling notes), that path."""
    described = {"type": _qualified_type(exc), "message": normalise(safe_str(exc))[:2000]}
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list) and notes:
        described["path"] = normalise("; ".join(str(n) for n in notes))[:2000]
    return described


def _qualified_type(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__") or module is None:
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` raises."""
    try:
        return str(exc)
    except Exception as e:  # an exception whose __str__ raises is a case too
        return f"<unprintable {type(exc).__name__}: {type(e).__name__}>"


def root_cause(exc: BaseException, pickle_log_exceptions=()) -> BaseException:
    """Dig the real cause out of what the compute call raised.

    ``pickle_log_exceptions`` are the exceptions distributed logged in
    ``distributed.protocol.pickle`` ("Failed to serialize") during the call:
    that log names the error of the final cloudpickle attempt even when the
    raised exception only says "Could not serialize object of type ...".
    """
    logged = list(pickle_log_exceptions)
    if logged:
        # the logged attempt that this exception came out of, else the last one logged
        chain = exception_chain(exc)
        in_chain = [e for e in logged if any(e is c for c in chain)]
        return innermost_cause((in_chain or logged)[-1])
    return innermost_cause(exc)


def describe_root_cause(exc: BaseException, pickle_log_exceptions=()) -> dict:
    """The root-cause record of what a compute call raised: :func:`root_cause`, described; or, when a
    worker could not pickle the result, the worker's own error, read from the traceback text that is all
    distributed sends of it."""
    remote = _remote_serialization_failure(exc)
    if remote is not None:
        parsed = _innermost_in_traceback_text(safe_str(remote))
        if parsed is not None:
            return parsed
    return describe(root_cause(exc, pickle_log_exceptions))


_DURING = "\nDuring handling of the above exception, another exception occurred:\n"
_CAUSED = "\nThe above exception was the direct cause of the following exception:\n"


def _innermost_in_traceback_text(text: str) -> dict | None:
    """The root cause in a formatted exception chain (``traceback.format_exc``'s text), by the rule of
    :func:`innermost_cause`: the last attempt (after the last "During handling ..."), then down its
    explicit causes (the first block before "The above exception was the direct cause ...").
    None when ``text`` holds no traceback."""
    if "Traceback (most recent call last):" not in text:
        return None
    block = text.rsplit(_DURING, 1)[-1].split(_CAUSED, 1)[0]
    lines = block.strip("\n").split("\n")
    last_frame = max((i for i, line in enumerate(lines) if line.startswith("  File ")), default=None)
    if last_frame is None:
        return None
    rest = lines[last_frame + 1:]
    while rest and (rest[0].startswith("    ") or not rest[0].strip()):
        rest = rest[1:]  # the frame's source line and its ^^^ markers
    if not rest:
        return None
    first, *more = rest
    kind, sep, message = first.partition(": ")
    if not sep and kind.endswith(":"):
        kind = kind[:-1]
    message = "\n".join([message, *more]) if more else message
    return {"type": kind.strip(), "message": normalise(message)[:2000]}


def _remote_serialization_failure(exc: BaseException) -> BaseException | None:
    """The exception in ``exc``'s chain that stands for a failure to pickle on the *other* side: distributed
    sends "could not serialize" in place of the object, and the receiving side's ``serialization_error_loads``
    raises it (its message: "Could not serialize object of type X" and the sender's traceback, as text)."""
    for e in exception_chain(exc):
        if _raised_in(e, ((("distributed", "protocol"), ("serialization_error_loads",)),)):
            return e
    return None


def _is_killed_worker(exc: BaseException) -> bool:
    # KilledWorker moved between modules over the years; match by name + package.
    for cls in type(exc).__mro__:
        if cls.__name__ == "KilledWorker" and cls.__module__.startswith("distributed"):
            return True
    return False


# Where distributed pickles and unpickles: (module path parts, names of the functions that do it).
_SERIALIZING = ((("distributed", "protocol"),
                 ("dumps", "serialize", "pickle_dumps", "serialize_and_split", "_encode_default")),)
_DESERIALIZING = ((("distributed", "protocol"),
                   ("loads", "deserialize", "pickle_loads", "deserialize_and_unsplit", "_decode_default")),
                  (("distributed", "scheduler.py"), ("update_graph", "_materialize_graph")))


# Code that runs only on the cluster's side: a frame of it in a traceback the client got means the exception
# was raised there and sent back (a LocalCluster of worker processes, as the harness starts, or a remote one).
_CLUSTER_SIDE = ((("distributed", "scheduler.py"), None), (("distributed", "worker.py"), None),
                 (("distributed", "worker_state_machine.py"), None))


def _raised_in(exc: BaseException, places) -> bool:
    """Whether a frame of ``exc``'s traceback is in one of ``places`` (see _SERIALIZING; names None: any)."""
    return any(_in_module(fr.filename, *parts) and (names is None or fr.name in names)
               for fr in _frames(exc) for parts, names in places)


def _raised_in_serialization(exc: BaseException, *, by_type: bool = True) -> bool:
    """Whether ``exc``'s chain was raised pickling: in distributed's pickling functions or cloudpickle's dump,
    or (``by_type``, for an exception no task raised) of a pickling error's type."""
    return any((by_type and isinstance(e, pickle.PicklingError)) or _raised_in(e, _SERIALIZING)
               or any(_in_module(fr.filename, "cloudpickle") and "dump" in fr.name for fr in _frames(e))
               for e in exception_chain(exc))


def _raised_in_deserialization(exc: BaseException, *, by_type: bool = True) -> bool:
    return any((by_type and isinstance(e, pickle.UnpicklingError)) or _raised_in(e, _DESERIALIZING)
               for e in exception_chain(exc))


def _reported_task_error(exc: BaseException, erred) -> tuple | None:
    """``(exception, its traceback's frames)`` when an exception of ``exc``'s chain is one the scheduler reported
    as a task's error ("task-erred": ``erred`` holds the (exception, traceback) pairs the client was sent), else
    None. The traceback is the cluster's, which distributed starts where its own worker and scheduler code
    ends: at the task's own code, or at distributed's unpickling of the task."""
    for e in exception_chain(exc):
        for reported, tb in erred or ():
            if reported is e:
                try:
                    frames = list(traceback.extract_tb(tb)) if tb is not None else []
                except Exception:  # not a traceback after all: where it was raised is not known
                    frames = []
                return e, frames
    return None


def classify_failure(exc: BaseException, *, submitted: bool, sent: bool, erred=()) -> str:
    """The outcome for an exception raised by a compute call (see :func:`classify`)."""
    return classify(exc, submitted=submitted, sent=sent, erred=erred)[0]


def classify(exc: BaseException, *, submitted: bool, sent: bool, erred=()) -> tuple:
    """(outcome, stage) for an exception raised by a compute call; stage is one of STAGES, or None.

    ``submitted``: the work was headed for the cluster (dask's scheduler for
    the call was the distributed client, or ``Client._graph_to_futures`` ran).
    ``sent``: the "update-graph" message actually left for the scheduler.
    ``erred``: the (exception, traceback) pairs the scheduler reported as tasks' errors ("task-erred").
    All three are observed on the client, not guessed from the method's name.
    A failure on the client before anything was sent (pickling the graph, or
    dask preparing it) is a serialize-error: the cluster never got the work.
    After that, where the exception was raised says the stage, never its type
    alone: an exception the task's own code raised (a task error whose cluster
    traceback starts outside distributed) is a task-error, a ``PicklingError``
    from the task's own ``pickle.dumps`` included; a worker that could not
    pickle the result sends a stand-in that raises on the client
    (``serialization_error_loads``); an unpickling failure in distributed's
    code on the cluster (the scheduler's ``update_graph``, a worker, or any
    reported task error) is the graph's, one on the client is the result's.
    """
    if not submitted:
        # The work never went near the cluster: whatever happened, happened
        # here. The exception stays the root cause, but the outcome is this.
        return RAN_LOCALLY, None
    if _is_killed_worker(exc):
        return WORKER_DIED, STAGE_TASK
    if not sent:
        return SERIALIZE_ERROR, STAGE_CLIENT_PICKLE
    reported = _reported_task_error(exc, erred)
    if reported is not None and reported[1] and not _in_module(reported[1][0].filename, "distributed"):
        # the task ran and its own code raised: whose error it is does not depend on its type
        return TASK_ERROR, STAGE_TASK
    if _remote_serialization_failure(exc) is not None:
        return SERIALIZE_ERROR, STAGE_WORKER_PICKLE
    # The exception's type counts only for one no task raised (a task error whose traceback was lost says
    # nothing of where; a task may pickle and unpickle as it likes).
    by_type = reported is None
    if _raised_in_deserialization(exc, by_type=by_type):
        cluster_side = reported is not None or any(_raised_in(e, _CLUSTER_SIDE) and _raised_in(e, _DESERIALIZING)
                                                   for e in exception_chain(exc))
        return DESERIALIZE_ERROR, STAGE_CLUSTER_UNPICKLE if cluster_side else STAGE_CLIENT_UNPICKLE
    if _raised_in_serialization(exc, by_type=by_type):
        # the graph arrived, so this is a worker failing to pickle a result
        return SERIALIZE_ERROR, STAGE_WORKER_PICKLE
    return TASK_ERROR, STAGE_TASK
