CASE = {
    "family": "misc",
    "summary": "A 64 MB bytes object passed to a task that checksums it",
    "tags": ["large", "bytes"],
    "timeout": 60,
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <function on_worker>: attribute lookup on_worker
    # on __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import zlib

import dask

blob = bytes(range(256)) * (64 * 1024 * 1024 // 256)
assert len(blob) == 64 * 1024 * 1024
checksum = zlib.crc32(blob)


def on_worker(b):
    return len(b), zlib.crc32(b)


result = dask.delayed(on_worker)(blob)
expected = (64 * 1024 * 1024, checksum)
