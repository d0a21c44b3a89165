CASE = {
    "family": "hangs",
    "summary": "A task that stops its own worker process (SIGSTOP): neither dead nor answering",
    "timeout": 2,
    "expect": "timeout",
    # dask.compute(client=) runs it on the cell's own threads: the cell's process stops, and times out
    "expect_when": [[{"method": "dask.compute(client=)"}, "timeout"]],
}
import os
import signal

import dask


def stop_myself():
    os.kill(os.getpid(), signal.SIGSTOP)
    return 1


result = dask.delayed(stop_myself)()
expected = 1
