CASE = {
    "family": "classes",
    "summary": "An instance of a class defined inside a function (stdlib pickle cannot find it), sent and returned",
    "tags": ["local-class", "closure", "by-value", "identity"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <class '__main__.Counter'>: attribute lookup
    # Counter on __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask


def make_counter_class(step):
    class Counter:
        def __init__(self):
            self.n = 0

        def tick(self):
            self.n += step  # closes over the factory's local
            return self

    return Counter


Counter = make_counter_class(5)
c = Counter().tick()


def tick_on_worker(counter):
    return counter.tick()


result = dask.delayed(tick_on_worker)(c)


def check(value):
    # The instance the worker returns is an instance of *this* Counter class again.
    return type(value) is Counter and value.n == 10 and value.tick().n == 15
