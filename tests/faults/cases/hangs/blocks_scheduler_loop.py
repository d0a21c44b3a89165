CASE = {
    "family": "hangs",
    "summary": "A cell that puts a 30 s time.sleep on the scheduler's event loop: the scheduler stops answering",
    "timeout": 2,
    "expect": "timeout",
}
import time

import dask


def block_the_scheduler(dask_scheduler=None):
    # returns at once; the loop that runs the scheduler (the harness's own, for a cluster it owns) sleeps
    dask_scheduler.loop.add_callback(time.sleep, 30)


client.run_on_scheduler(block_the_scheduler)  # noqa: F821 - the harness binds `client`

result = dask.delayed(sum)([1, 2])
expected = 3
