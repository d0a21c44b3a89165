CASE = {
    "family": "misc",
    "summary": "A 64 MB bytes object passed to a task that checksums it",
    "tags": ["large", "bytes"],
    "timeout": 60,
    "expect": "pass",
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
