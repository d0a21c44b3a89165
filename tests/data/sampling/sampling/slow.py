CASE = {
    "family": "sampling",
    "summary": "A cell whose task takes 0.6 s: two samples, asv's rule (selection.REPEAT)",
    "timeout": 10,
    "expect": "pass",
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]],
}
import time

import dask

result = dask.delayed(time.sleep)(0.6)
expected = None
