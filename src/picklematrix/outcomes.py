"""The outcome vocabulary and how an exception becomes an outcome and a root cause.

Runs inside every matrix environment: standard library only, Python 3.10+.
Classification looks at exception *types* and at *where* they were raised (the
traceback's modules), never at message text: Python 3.13 reworded pickle errors.
"""

from __future__ import annotations

import os
import pickle
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
STAGES = (STAGE_CLIENT_PICKLE, STAGE_CLUSTER_UNPICKLE, STAGE_TASK, STAGE_WORKER_PICKLE, STAGE_CLIENT_UNPICKLE)

FAILURES = frozenset(
    {WRONG_RESULT, SERIALIZE_ERROR, DESERIALIZE_ERROR, TASK_ERROR, WORKER_DIED}
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


def describe(exc: BaseException) -> dict:
    message = _safe_str(exc)
    return {"type": _qualified_type(exc), "message": message[:2000]}


def _qualified_type(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__") or module is None:
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _safe_str(exc: BaseException) -> str:
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


def _raised_in(exc: BaseException, places) -> bool:
    """Whether a frame of ``exc``'s traceback is in one of ``places`` (see _SERIALIZING)."""
    return any(_in_module(fr.filename, *parts) and fr.name in names
               for fr in _frames(exc) for parts, names in places)


def _raised_in_serialization(exc: BaseException) -> bool:
    return any(isinstance(e, pickle.PicklingError) or _raised_in(e, _SERIALIZING)
               or any(_in_module(fr.filename, "cloudpickle") and "dump" in fr.name for fr in _frames(e))
               for e in exception_chain(exc))


def _raised_in_deserialization(exc: BaseException) -> bool:
    return any(isinstance(e, pickle.UnpicklingError) or _raised_in(e, _DESERIALIZING)
               for e in exception_chain(exc))


def classify_failure(exc: BaseException, *, submitted: bool, sent: bool) -> str:
    """The outcome for an exception raised by a compute call.

    ``submitted``: the work was headed for the cluster (dask's scheduler for
    the call was the distributed client, or ``Client._graph_to_futures`` ran).
    ``sent``: the "update-graph" message actually left for the scheduler.
    Both are observed on the client, not guessed from the method's name.
    A failure on the client before anything was sent (pickling the graph, or
    dask preparing it) is a serialize-error: the cluster never got the work.
    """
    if not submitted:
        # The work never went near the cluster: whatever happened, happened
        # here. The exception stays the root cause, but the outcome is this.
        return RAN_LOCALLY
    if _is_killed_worker(exc):
        return WORKER_DIED
    if not sent:
        return SERIALIZE_ERROR
    if _raised_in_deserialization(exc):
        return DESERIALIZE_ERROR
    if _raised_in_serialization(exc):
        # the graph arrived, so this is a worker failing to pickle a result
        return SERIALIZE_ERROR
    return TASK_ERROR
