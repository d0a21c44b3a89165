CASE = {
    "family": "broken",
    "summary": "x",
    "expect": "pass",
    "expect_when": [
        [{"numpy": ">=2"}, "pass"],
        [{"pydantic": "<<2.9"}, "pass"],
        [{"method": "client.compute"}, "pass"],
    ],
}
