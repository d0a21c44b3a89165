CASE = {
    "family": "misc",
    "summary": "A task that never returns: the cell times out and the workers are replaced",
    "tags": ["harness", "timeout"],
    "timeout": 1,
    "expect": "timeout",
    # The local threaded scheduler hangs just the same: timeout outranks ran-locally.
    "expect_when": [[{"method": "dask.compute(client=)"}, "timeout"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that
                    # travels by value crashes the 3.11 worker that runs it (SIGSEGV).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
import time

import dask


def hang(x):
    time.sleep(3600)
    return x


result = dask.delayed(hang)(1)
expected = 1
