CASE = {
    "family": "take_over",
    "summary": "A script cell whose task takes a quarter of a second: the run is still busy when its lane asks",
    "timeout": 10,
    "contexts": ["script"],
    "expect": "pass",
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]],
}
import time

import dask


def slow(x):
    time.sleep(0.25)
    return x + 2


result = dask.delayed(slow)(1)
expected = 1 + 2
