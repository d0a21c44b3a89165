CASE = {"family": "broken", "summary": "x", "expect": "pass"}
def f(:
    pass
