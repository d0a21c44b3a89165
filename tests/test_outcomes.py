"""Root-cause extraction on real exceptions raised by distributed's real pickling chain."""

import logging
import pickle
import threading

from picklematrix import outcomes as oc
from picklematrix.run.culprit import culprit_path


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.exceptions = []

    def emit(self, record):
        if record.exc_info:
            self.exceptions.append(record.exc_info[1])


def _serialize_failure(obj):
    from distributed.protocol.serialize import serialize

    capture = _Capture()
    logger = logging.getLogger("distributed.protocol")
    logger.addHandler(capture)
    try:
        serialize(obj, on_error="raise")
    except Exception as e:
        return e, capture.exceptions
    finally:
        logger.removeHandler(capture)
    raise AssertionError("expected serialization to fail")


def test_root_cause_is_the_last_attempt_not_the_innermost_exception():
    lock = threading.Lock()
    uses_lock = lambda: lock  # noqa: E731 - a lambda: stdlib pickle fails by name first
    raised, logged = _serialize_failure(uses_lock)
    chain = oc.exception_chain(raised)
    # The naive answer: the bottom of the chain is stdlib pickle's by-name failure
    # (AttributeError "Can't pickle local object" on 3.11, PicklingError on 3.13) ...
    assert isinstance(chain[-1], (pickle.PicklingError, AttributeError))
    assert "lock" not in str(chain[-1])
    # ... the top is distributed's wrapper ...
    assert "Could not serialize" in str(raised)
    # ... and the cause is what ended cloudpickle's attempt: the lock.
    cause = oc.root_cause(raised, logged)
    assert isinstance(cause, TypeError) and "lock" in str(cause)
    # without the log, the chain alone gives the same answer
    assert oc.root_cause(raised) is cause


def test_describe_qualifies_non_builtin_types():
    class Custom(Exception):
        pass

    assert oc.describe(ValueError("x")) == {"type": "ValueError", "message": "x"}
    assert oc.describe(Custom("y"))["type"].endswith("Custom")


def test_an_exception_whose_str_raises_is_still_described():
    class Nasty(Exception):
        def __str__(self):
            raise RuntimeError("no")

    assert "unprintable" in oc.describe(Nasty())["message"]


def test_classification_uses_where_the_work_went():
    err = KeyError("boom")
    assert oc.classify_failure(err, submitted=False, sent=False) == oc.RAN_LOCALLY
    assert oc.classify_failure(err, submitted=True, sent=False) == oc.SERIALIZE_ERROR
    assert oc.classify_failure(err, submitted=True, sent=True) == oc.TASK_ERROR


def test_outcome_codes_are_stable():
    assert oc.OUTCOME_CODES == {"pass": 0, "wrong-result": 1, "serialize-error": 2, "deserialize-error": 3,
                                "task-error": 4, "ran-locally": 5, "timeout": 6, "worker-died": 7,
                                "not-applicable": 8, "harness-error": 9, "client-died": 10}
    # appended, never renumbered: every code an older record holds still reads as the outcome it was
    assert all(oc.CODE_OUTCOMES[code] == name for name, code in oc.OUTCOME_CODES.items())


def test_comm_addresses_lose_their_ports_and_keep_their_host():
    text = ("Attempted to run task 'die-0123456789abcdef0123456789abcdef' on 1 different workers ... The last worker "
            "that attempt to run the task was tcp://127.0.0.1:39101. Also tls://[::1]:8786, ws://node-3.example:443 "
            "and <Worker 'tcp://10.0.0.5:41234', name: 0>")
    assert oc.normalise(text) == (
        "Attempted to run task 'die-\u2026' on 1 different workers ... The last worker that attempt to run the task "
        "was tcp://127.0.0.1:\u2026. Also tls://[::1]:\u2026, ws://node-3.example:\u2026 and "
        "<Worker 'tcp://10.0.0.5:\u2026', name: 0>")
    # a time or a ratio is no comm address
    assert oc.normalise("took 12:30 at ratio 1:2") == "took 12:30 at ratio 1:2"


def test_addresses_are_normalised_so_runs_compare():
    class Thing:
        pass

    described = oc.describe(TypeError(f"cannot pickle {Thing()!r} or {object()!r}"))
    assert "0x7" not in described["message"] and described["message"].count("at 0x…>") == 2
    assert oc.describe(ValueError("flag 0x10 stays")) == {"type": "ValueError", "message": "flag 0x10 stays"}


def _formatted(exc_factory) -> str:
    try:
        exc_factory()
    except Exception:
        import traceback

        return "Could not serialize object of type Session\n" + traceback.format_exc()
    raise AssertionError("expected an exception")


def test_the_root_cause_in_a_traceback_text_is_the_last_attempts_innermost_cause():
    """What a worker that could not pickle a result sends back is text: the rule of innermost_cause holds."""
    def attempts():
        try:
            raise pickle.PicklingError("first attempt (stdlib pickle)")
        except pickle.PicklingError:
            try:
                raise TypeError(f"cannot pickle '_thread.lock' object at 0x{id(attempts):x}")
            except TypeError as e:
                raise RuntimeError("Session cannot be shipped") from e

    parsed = oc._innermost_in_traceback_text(_formatted(attempts))
    assert parsed == {"type": "TypeError", "message": "cannot pickle '_thread.lock' object at 0x…"}
    assert oc._innermost_in_traceback_text("Could not serialize object of type X") is None


def test_the_path_to_the_culprit_follows_what_pickling_would():
    """A dotted path from the cell's result to the object that would not pickle, through containers,
    instance attributes and what an object's own reducer returns (its referent, for a weak reference)."""
    import weakref

    class Holder:  # reduces to what its weak reference points at, as pydantic 2.8's namespace values do
        def __init__(self, target):
            self._wr = weakref.ref(target)

        def __reduce__(self):
            return (list, (self._wr(),))

    class Session:
        def __init__(self):
            self.conn_lock = threading.Lock()

    session = Session()
    root = {"jobs": [1, Holder(session)]}
    try:
        pickle.dumps(session.conn_lock)
    except TypeError as e:
        error = e
    assert culprit_path(root, error) == "result['jobs'][1].__reduce__()[1][0].conn_lock"
    assert culprit_path({"nothing": 1}, error) is None
