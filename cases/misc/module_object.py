CASE = {
    "family": "misc",
    "summary": "The math module passed as data (pickled by reference as an import)",
    "tags": ["module", "by-reference"],
    "expect": "pass",
}
import math

import dask


def on_worker(mod, x):
    import sys

    return mod.__name__, mod.sqrt(x), mod is sys.modules["math"]


result = dask.delayed(on_worker)(math, 16.0)
expected = ("math", 4.0, True)
