CASE = {
    "family": "misc",
    "summary": "A read-only memoryview slice of bytes passed to a task: its bytes arrive, but as bytes",
    "tags": ["memoryview", "buffer", "by-value"],
    # stdlib pickle refuses memoryview; cloudpickle reduces it to bytes(view.tobytes()),
    # so the worker gets a bytes object, not a memoryview (cloudpickle 3.0.0 and 3.1.2).
    "expect": "wrong-result",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that travels by value
    # crashes the 3.11 worker that runs it (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask

view = memoryview(b"0123456789")[2:6]


def on_worker(mv):
    return type(mv).__name__, bytes(mv), len(mv)


result = dask.delayed(on_worker)(view)
expected = ("memoryview", b"2345", 4)
