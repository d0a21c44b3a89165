CASE = {"family": "elsewhere", "summary": "x", "expect": "pass"}
