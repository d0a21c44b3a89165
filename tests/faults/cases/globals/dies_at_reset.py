CASE = {"family": "globals", "summary": "Leaves an object whose __del__ kills the process: the kernel dies when the next case clears the namespace",
        "expect": "pass", "timeout": 20, "contexts": ["kernel"],
        "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import os

import dask


class DiesWhenDropped:
    def __del__(self):
        os._exit(17)


keeper = DiesWhenDropped()
result = dask.delayed(sum)([1, 2])
expected = 3
