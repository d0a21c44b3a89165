CASE = {
    "family": "misc",
    "summary": "A task that calls os._exit kills the process running it",
    "tags": ["harness", "worker-died"],
    "timeout": 60,
    "expect": "worker-died",
}
import os

import dask


def die(x):
    os._exit(13)


result = dask.delayed(die)(1)
expected = None
