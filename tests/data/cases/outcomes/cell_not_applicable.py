CASE = {"family": "outcomes", "summary": "A cell that declares itself not applicable here", "expect": "not-applicable",
        "expect_when": [[{"method": "dask.compute(client=)"}, "not-applicable"]]}
raise NotImplementedError("this environment lacks the feature under test")
