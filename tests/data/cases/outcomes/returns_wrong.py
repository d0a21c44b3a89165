CASE = {"family": "outcomes", "summary": "The task returns a different value than the cell expects", "expect": "wrong-result",
        "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import dask

result = dask.delayed(lambda: 41)()
expected = 42
