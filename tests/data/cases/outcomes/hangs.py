CASE = {"family": "outcomes", "summary": "A task that never returns", "expect": "timeout", "timeout": 2,
        "expect_when": [[{"method": "dask.compute(client=)"}, "timeout"]]}
import time

import dask

result = dask.delayed(time.sleep)(3600)
expected = None
