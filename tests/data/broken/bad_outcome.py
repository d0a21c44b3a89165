CASE = {
    "family": "broken",
    "summary": "x",
    "expect": "passed",
}
