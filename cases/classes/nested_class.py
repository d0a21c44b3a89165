CASE = {
    "family": "classes",
    "summary": "An instance of a class nested in another __main__ class (qualname Outer.Inner)",
    "tags": ["nested-class", "qualname", "by-value"],
    # cloudpickle rebuilds a by-value class from its __name__: the nested
    # __qualname__ ("Config.Backoff") comes back as "Backoff" (cloudpickle 3.0.0 and 3.1.2).
    "expect": "wrong-result",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <class '__main__.Backoff'>: attribute lookup
    # Backoff on __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask


class Config:
    retries = 3

    class Backoff:
        def __init__(self, base):
            self.base = base

        def delays(self, n):
            return [self.base * 2**i for i in range(n)]


def on_worker(b):
    return type(b).__qualname__, b.delays(3)


result = dask.delayed(on_worker)(Config.Backoff(0.5))
expected = ("Config.Backoff", [0.5, 1.0, 2.0])
