CASE = {"family": "outcomes", "summary": "The task itself raises ZeroDivisionError on the worker", "expect": "task-error"}
import dask


def divide(x):
    return x / 0


result = dask.delayed(divide)(1)
expected = None
