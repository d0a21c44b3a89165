CASE = {"family": "dup", "summary": "same id as ../syntax_error.py, but that one is broken", "expect": "pass"}
