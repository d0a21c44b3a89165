CASE = {"family": "outcomes", "summary": "A case that requires a distribution no environment has", "expect": "not-applicable",
        "requires": ["picklematrix-no-such-distribution"]}
raise AssertionError("must never run")
