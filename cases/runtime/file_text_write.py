CASE = {
    "family": "runtime",
    "summary": "A text file open for writing (a log handle) captured by a task that writes to it",
    "tags": ["file", "io", "unpicklable"],
    "expect": "serialize-error",
}
import tempfile

import dask

log = tempfile.TemporaryFile("w")  # like open("run.log", "w"), without leaving a file behind
assert log.mode == "w"


def log_and_square(x):
    log.write(f"{x}\n")
    return x * x


result = dask.delayed(log_and_square)(9)
expected = 81
