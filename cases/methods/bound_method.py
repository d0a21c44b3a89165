CASE = {
    "family": "methods",
    "summary": "A bound method of a __main__ class instance: the instance and its state travel with it",
    "tags": ["bound-method", "by-value"],
    "expect": "pass",
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
