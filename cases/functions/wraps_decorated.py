CASE = {
    "family": "functions",
    "summary": "A functools.wraps-decorated function: the wrapper, its metadata and __wrapped__ travel",
    "tags": ["decorator", "wraps", "closure", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <function area>: attribute lookup area on
    # __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import functools

import dask


def doubled(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return 2 * fn(*args, **kwargs)

    return wrapper


@doubled
def area(w, h):
    """Area of a rectangle."""
    return w * h


def inspect_on_worker(fn, w, h):
    return fn(w, h), fn.__name__, fn.__doc__, fn.__wrapped__(w, h)


result = dask.delayed(inspect_on_worker)(area, 3, 4)
expected = (24, "area", "Area of a rectangle.", 12)
