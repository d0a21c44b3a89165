CASE = {
    "family": "runtime",
    "summary": "A binary file open for reading (io.BufferedReader) passed to a task",
    "tags": ["file", "io", "binary", "unpicklable"],
    "expect": "serialize-error",
}
import string

import dask

# A source file of the standard library: it exists wherever the cell runs (a notebook
# cell has no __file__ of its own).
with open(string.__file__, "rb") as f:
    head = f.read(8)

reader = open(string.__file__, "rb")


def first_bytes(fh):
    return fh.read(8)


result = dask.delayed(first_bytes)(reader)
expected = head
