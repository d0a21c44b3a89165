CASE = {"family": "outcomes", "summary": "A task that never returns", "expect": "timeout", "timeout": 2}
import time

import dask

result = dask.delayed(time.sleep)(3600)
expected = None
