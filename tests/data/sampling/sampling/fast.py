CASE = {
    "family": "sampling",
    "summary": "A cell of a few milliseconds: every sample asked for",
    "timeout": 10,
    "expect": "pass",
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]],
}
import dask

result = dask.delayed(sum)([1, 2])
expected = 3
