CASE = {
    "family": "runtime",
    "summary": "sys.stdin passed to a task (a notebook captures it in a prompt helper)",
    "tags": ["file", "io", "stdio", "unpicklable"],
    "expect": "serialize-error",
}
import sys

import dask


def prompt(stream):
    return stream.readline()


result = dask.delayed(prompt)(sys.stdin)
expected = ""
