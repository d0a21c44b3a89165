CASE = {"family": "dup2", "summary": "second with the same id", "expect": "pass"}
