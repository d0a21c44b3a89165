CASE = {
    "family": "misc",
    "summary": "A writable memoryview over a bytearray passed to a task",
    "tags": ["memoryview", "buffer", "by-value", "env-difference"],
    # dask 2026.8.0: it travels (cloudpickle turns it into bytes, see memoryview_slice).
    # dask 2024.6.2: the compute call fails on the client before anything is submitted:
    # delayed's optimize -> HighLevelGraph.cull -> keys_in_tasks hashes the argument,
    # "ValueError: cannot hash writable memoryview object" (the local scheduler fails too).
    # The work was meant for the cluster and never left the client: serialize-error (the
    # harness's label for any client-side failure before the graph is sent). Only 2024.6.2 and
    # 2026.8.0 were measured.
    "expect": "wrong-result",
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"dask": "<=2024.6.2"}, "serialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that
                    # travels by value crashes the 3.11 worker that runs it (SIGSEGV).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
import dask

buf = bytearray(b"0123456789")
view = memoryview(buf)[2:6]


def on_worker(mv):
    return type(mv).__name__, bytes(mv), len(mv)


result = dask.delayed(on_worker)(view)
expected = ("memoryview", b"2345", 4)
