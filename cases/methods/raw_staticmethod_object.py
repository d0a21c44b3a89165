CASE = {
    "family": "methods",
    "summary": "The staticmethod descriptor object itself (Class.__dict__[name]) shipped as data",
    "tags": ["staticmethod", "descriptor", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (TypeError: cannot pickle 'staticmethod' object); the worker is
    # lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask


class Tools:
    @staticmethod
    def triple(x):
        return 3 * x


raw = Tools.__dict__["triple"]
assert isinstance(raw, staticmethod)


def use_descriptor(sm, x):
    # On the worker: still a staticmethod wrapping a working function.
    return type(sm).__name__, sm.__func__(x), sm.__get__(None, object)(x)


result = dask.delayed(use_descriptor)(raw, 7)
expected = ("staticmethod", 21, 21)
