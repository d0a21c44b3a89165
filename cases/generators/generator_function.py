CASE = {
    "family": "generators",
    "summary": "A generator function (not a generator) shipped as data and consumed on the worker",
    "tags": ["generator", "by-value"],
    "expect": "pass",
}
import dask


def squares(n):
    for i in range(n):
        yield i * i


def drain(gen_fn, n):
    return list(gen_fn(n))


result = dask.delayed(drain)(squares, 5)
expected = [0, 1, 4, 9, 16]
