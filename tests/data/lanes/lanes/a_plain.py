CASE = {
    "family": "lanes",
    "summary": "A plain cell: it passes in either lane",
    "timeout": 10,
    "expect": "pass",
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]],
}
import dask

result = dask.delayed(sum)([1, 2])
expected = 3
