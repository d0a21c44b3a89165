CASE = {"family": "timing", "summary": "A plain task", "expect": "pass"}
import dask

result = dask.delayed(sum)([1, 2])
expected = 3
