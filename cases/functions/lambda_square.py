CASE = {
    "family": "functions",
    "summary": "A lambda defined in __main__, mapped by a delayed call",
    "tags": ["lambda", "by-value"],
    "expect": "pass",
}
import dask

square = lambda x: x * x  # noqa: E731
result = dask.delayed(square)(7)
expected = 49
