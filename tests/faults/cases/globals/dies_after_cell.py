CASE = {"family": "globals", "summary": "Starts a timer that kills the process a second after the cell: the kernel dies between cells",
        "expect": "pass", "timeout": 20, "contexts": ["kernel"],
        "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import os
import threading

import dask

threading.Timer(1.0, os._exit, (19,)).start()
result = dask.delayed(sum)([1, 2])
expected = 3
