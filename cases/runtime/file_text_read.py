CASE = {
    "family": "runtime",
    "summary": "A text file open for reading, partly read, passed to a task that reads on",
    "tags": ["file", "io", "by-value"],
    "expect": "pass",
}
import string

import dask

# A source file of the standard library: it exists wherever the cell runs (a notebook
# cell has no __file__ of its own).
with open(string.__file__) as f:
    lines = f.readlines()

handle = open(string.__file__)
handle.readline()  # position after the first line


def next_line(fh):
    return fh.readline()


result = dask.delayed(next_line)(handle)
expected = lines[1]
