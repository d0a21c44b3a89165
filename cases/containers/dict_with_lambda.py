CASE = {
    "family": "containers",
    "summary": "A dict holding a delayed value and a lambda: both methods work, Client.compute ships the lambda",
    "tags": ["container", "lambda", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the lambda comes back by value from a
    # 3.11 worker, and calling its 3.11 code in the check crashes the 3.12 client (SIGSEGV, at client-uses-result).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "client-died"]],
}
import dask

offset = 100
result = {"total": dask.delayed(sum)([1, 2, 3]), "shift": lambda x: x + offset}


def check(value):
    # Not necessarily the same function object (Client.compute sends it round trip), but it must work.
    return value["total"] == 6 and value["shift"](1) == 101 and value["shift"].__name__ == "<lambda>"
