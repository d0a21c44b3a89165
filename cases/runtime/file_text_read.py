CASE = {
    "family": "runtime",
    "summary": "A text file open for reading, partly read, passed to a task that reads on",
    "tags": ["file", "io", "by-value"],
    "expect": "pass",
}
import dask

# The cell's own source file: it exists wherever the cell runs.
with open(__file__) as f:
    lines = f.readlines()

handle = open(__file__)
handle.readline()  # position after the first line


def next_line(fh):
    return fh.readline()


result = dask.delayed(next_line)(handle)
expected = lines[1]
