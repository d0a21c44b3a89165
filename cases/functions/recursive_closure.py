CASE = {
    "family": "functions",
    "summary": "A local function that calls itself through its own closure cell",
    "tags": ["closure", "recursion", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code runs on the 3.11 worker
    # and returns a wrong value (1, not 89), with no error.
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "wrong-result"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "wrong-result"]],
}
import dask


def make_fib(base):
    def fib(n):
        return base if n < 2 else fib(n - 1) + fib(n - 2)

    return fib


fib = make_fib(1)  # fib's closure holds fib itself: a reference cycle
result = dask.delayed(fib)(10)
expected = 89
