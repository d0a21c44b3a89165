CASE = {
    "family": "hangs",
    "summary": "A task that allocates far beyond its worker's memory limit, a chunk at a time",
    "timeout": 30,
    "expect": "worker-died",
}
import time

import dask
from distributed import get_worker


def eat():
    get_worker()  # raises outside a worker: never eat the cell's own process (dask.compute(client=))
    chunks = []
    for _ in range(64):  # up to 4 GiB, far beyond the tests' limit (PICKLEMATRIX_WORKER_MEMORY)
        chunks.append(bytearray(64 * 2**20))
        time.sleep(0.1)  # the nanny samples memory every second
    return len(chunks)


result = dask.delayed(eat)()
expected = 64
