CASE = {
    "family": "functions",
    "summary": "A functools.wraps-decorated function: the wrapper, its metadata and __wrapped__ travel",
    "tags": ["decorator", "wraps", "closure", "by-value"],
    "expect": "pass",
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
