CASE = {"family": "outcomes", "summary": "A broken cell that binds no result: the harness says so", "expect": "harness-error",
        "expect_when": [[{"method": "dask.compute(client=)"}, "harness-error"]]}
x = 1
