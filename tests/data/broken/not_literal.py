CASE = {"family": "broken", "summary": "x", "expect": str("pass")}
