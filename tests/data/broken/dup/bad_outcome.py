CASE = {"family": "dup", "summary": "valid, but its id collides with nothing valid either", "expect": "pass"}
