CASE = {"family": "globals", "summary": "Leaves an object whose __del__ never returns: the kernel hangs when the next case clears the namespace",
        "expect": "pass", "timeout": 20, "contexts": ["kernel"],
        "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import time

import dask


class HangsWhenDropped:
    def __del__(self):
        time.sleep(3600)


keeper = HangsWhenDropped()
result = dask.delayed(sum)([1, 2])
expected = 3
