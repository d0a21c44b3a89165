CASE = {
    "family": "functions",
    "summary": "Positional-only and keyword-only parameters with defaults; defaults must survive the trip",
    "tags": ["signature", "defaults", "by-value"],
    "expect": "pass",
}
import dask


def combine(a, b=2, /, c=3, *, d=4, e=5):
    return [a, b, c, d, e]


def call_with_defaults(fn):
    # Runs on the worker: only the first positional argument and one keyword are given.
    return fn(1, d=40), fn.__defaults__, fn.__kwdefaults__, fn.__code__.co_posonlyargcount


result = dask.delayed(call_with_defaults)(combine)
expected = ([1, 2, 3, 40, 5], (2, 3), {"d": 4, "e": 5}, 2)
