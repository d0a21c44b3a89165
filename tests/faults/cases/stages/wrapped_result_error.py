CASE = {"family": "stages", "summary": "The task returns an object whose __reduce__ wraps the error naming the culprit",
        "expect": "serialize-error", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import threading

import dask


class Session:
    def __init__(self):
        self.conn_lock = threading.Lock()

    def __reduce__(self):
        try:
            import pickle

            pickle.dumps(self.conn_lock)
        except TypeError as e:
            raise RuntimeError("Session cannot be shipped") from e
        return (Session, ())


result = dask.delayed(Session)()
expected = None
