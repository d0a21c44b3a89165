CASE = {"family": "stages", "summary": "A task whose error names an object by its memory address",
        "expect": "task-error", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import dask


class Widget:
    pass


def fail():
    raise ValueError(f"bad widget {Widget()!r} and {object()!r}")


result = dask.delayed(fail)()
expected = None
