CASE = {
    "family": "functions",
    "summary": "A function importable on the worker (statistics.median), pickled by reference: the control for __main__ functions",
    "tags": ["by-reference"],
    "expect": "pass",
}
import statistics

import dask

result = dask.delayed(statistics.median)([5, 1, 4, 2, 3])
expected = 3
