CASE = {
    "family": "runtime",
    "summary": "A text file open for reading, partly read, passed to a task that reads on",
    "tags": ["file", "io", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <function next_line>: attribute lookup next_line
    # on __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
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
