CASE = {
    "family": "runtime",
    "summary": "sys.stdout passed to a task: it arrives as the worker's own sys.stdout",
    "tags": ["file", "io", "stdio", "by-reference"],
    "expect": "pass",
}
import sys

import dask


def emit(stream):
    # Write nothing: the worker's stdout is the harness's terminal.
    return stream is sys.stdout, stream.writable(), stream.write("")


result = dask.delayed(emit)(sys.stdout)
expected = (True, True, 0)
