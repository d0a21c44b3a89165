CASE = {"family": "outcomes", "summary": "A task that ends its process; run locally it ends the cell's process", "expect": "worker-died",
        "timeout": 60}
import os

import dask

result = dask.delayed(os._exit)(3)
expected = None
