CASE = {
    "family": "lanes",
    "summary": "A plain cell after the lane's death: it runs all the same",
    "timeout": 10,
    "expect": "pass",
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]],
}
import dask

result = dask.delayed(sum)([3, 4])
expected = 7
