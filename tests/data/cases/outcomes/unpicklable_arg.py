CASE = {"family": "outcomes", "summary": "A task argument that cannot be pickled: a live generator", "expect": "serialize-error"}
import dask

gen = (i for i in range(3))
result = dask.delayed(sum)(gen)
expected = 3
