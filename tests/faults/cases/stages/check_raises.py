CASE = {"family": "stages", "summary": "The value comes back but the case's own check() is broken",
        "expect": "harness-error", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "harness-error"]]}
import dask

result = dask.delayed(sum)([1, 2])


def check(value):
    return value.nonexistent_attribute == 3
