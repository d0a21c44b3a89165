CASE = {
    "family": "functions",
    "summary": "A local function that calls itself through its own closure cell",
    "tags": ["closure", "recursion", "by-value"],
    "expect": "pass",
}
import dask


def make_fib(base):
    def fib(n):
        return base if n < 2 else fib(n - 1) + fib(n - 2)

    return fib


fib = make_fib(1)  # fib's closure holds fib itself: a reference cycle
result = dask.delayed(fib)(10)
expected = 89
