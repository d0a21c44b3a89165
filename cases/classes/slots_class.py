CASE = {
    "family": "classes",
    "summary": "A __slots__ class (no __dict__) in __main__: values and the slots layout must survive",
    "tags": ["slots", "by-value"],
    # cloudpickle rebuilds a by-value class without its slots (the slot
    # descriptors are dropped, __slots__ is set afterwards as a plain attribute):
    # the values survive, but instances on the worker get a __dict__.
    "expect": "wrong-result",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <class '__main__.Vec'>: attribute lookup Vec on
    # __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask


class Vec:
    __slots__ = ("x", "y", "tag")

    def __init__(self, x, y):
        self.x = x
        self.y = y  # 'tag' stays unset

    def dot(self, other):
        return self.x * other.x + self.y * other.y


def on_worker(v):
    return v.dot(v), hasattr(v, "__dict__"), hasattr(v, "tag"), type(v).__slots__


result = dask.delayed(on_worker)(Vec(3, 4))
expected = (25, False, False, ("x", "y", "tag"))
