CASE = {
    "family": "functions",
    "summary": "A lambda returned by a lambda (curried adder), shipped as the task function",
    "tags": ["lambda", "closure", "by-value"],
    "expect": "pass",
}
import dask

adder = lambda a: lambda b: a + b  # noqa: E731
add10 = adder(10)
result = dask.delayed(add10)(32)
expected = 42
