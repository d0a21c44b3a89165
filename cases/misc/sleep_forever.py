CASE = {
    "family": "misc",
    "summary": "A task that never returns: the cell times out and the workers are replaced",
    "tags": ["harness", "timeout"],
    "timeout": 1,
    "expect": "timeout",
    # The local threaded scheduler hangs just the same: timeout outranks ran-locally.
    "expect_when": [[{"method": "dask.compute(client=)"}, "timeout"]],
}
import time

import dask


def hang(x):
    time.sleep(3600)
    return x


result = dask.delayed(hang)(1)
expected = 1
