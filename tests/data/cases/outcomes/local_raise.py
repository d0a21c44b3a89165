CASE = {"family": "outcomes", "summary": "A task that raises; run locally the exception stays the root cause", "expect": "task-error"}
import dask


def boom():
    raise KeyError("boom")


result = dask.delayed(boom)()
expected = None
