CASE = {
    "family": "hangs",
    "summary": "A task that puts a 60 s time.sleep on its worker's event loop: the worker stops answering",
    "timeout": 2,
    "expect": "timeout",
}
import time

import dask
from distributed import get_worker


def block_the_loop():
    # The task itself returns at once; its result can never leave, because the loop that would send it
    # sleeps, and so does every later message to this worker.
    get_worker().loop.add_callback(time.sleep, 60)
    time.sleep(0.5)
    return 1


result = dask.delayed(block_the_loop)()
expected = 1
