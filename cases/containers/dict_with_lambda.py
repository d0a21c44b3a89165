CASE = {
    "family": "containers",
    "summary": "A dict holding a delayed value and a lambda: both methods work, Client.compute ships the lambda",
    "tags": ["container", "lambda", "by-value"],
    "expect": "pass",
}
import dask

offset = 100
result = {"total": dask.delayed(sum)([1, 2, 3]), "shift": lambda x: x + offset}


def check(value):
    # Not necessarily the same function object (Client.compute sends it round trip), but it must work.
    return value["total"] == 6 and value["shift"](1) == 101 and value["shift"].__name__ == "<lambda>"
