CASE = {
    "family": "methods",
    "summary": "A bound method of a __main__ class instance: the instance and its state travel with it",
    "tags": ["bound-method", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that travels by value
    # crashes the 3.11 worker that runs it (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask


class Accumulator:
    def __init__(self, start):
        self.total = start

    def add(self, x):
        self.total += x
        return self.total


acc = Accumulator(100)
add = acc.add
result = dask.delayed(add)(5)
expected = 105
