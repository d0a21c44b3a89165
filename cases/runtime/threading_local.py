CASE = {
    "family": "runtime",
    "summary": "A threading.local() holding per-thread state, passed to a task",
    "tags": ["threading", "thread-local", "unpicklable"],
    "expect": "serialize-error",
}
import threading

import dask

state = threading.local()
state.user = "alice"


def who(s):
    return getattr(s, "user", None)


result = dask.delayed(who)(state)
expected = "alice"
