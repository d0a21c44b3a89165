CASE = {
    "family": "functions",
    "summary": "functools.partial wrapping a lambda, with bound positional and keyword arguments",
    "tags": ["partial", "lambda", "by-value"],
    "expect": "pass",
}
import functools

import dask

scaled_diff = functools.partial(lambda a, b, scale=1: (a - b) * scale, 100, scale=2)
result = dask.delayed(scaled_diff)(58)
expected = 84
