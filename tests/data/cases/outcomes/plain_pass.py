CASE = {"family": "outcomes", "summary": "A plain delayed sum", "expect": "pass"}
import dask

result = dask.delayed(sum)([1, 2, 3])
expected = 6
