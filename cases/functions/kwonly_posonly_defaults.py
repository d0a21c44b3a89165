CASE = {
    "family": "functions",
    "summary": "Positional-only and keyword-only parameters with defaults; defaults must survive the trip",
    "tags": ["signature", "defaults", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <function combine>: attribute lookup combine on
    # __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask


def combine(a, b=2, /, c=3, *, d=4, e=5):
    return [a, b, c, d, e]


def call_with_defaults(fn):
    # Runs on the worker: only the first positional argument and one keyword are given.
    return fn(1, d=40), fn.__defaults__, fn.__kwdefaults__, fn.__code__.co_posonlyargcount


result = dask.delayed(call_with_defaults)(combine)
expected = ([1, 2, 3, 40, 5], (2, 3), {"d": 4, "e": 5}, 2)
