CASE = {"family": "dup", "summary": "first", "expect": "pass"}
