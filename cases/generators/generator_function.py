CASE = {
    "family": "generators",
    "summary": "A generator function (not a generator) shipped as data and consumed on the worker",
    "tags": ["generator", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 generator's code raises on the
    # 3.11 worker (TypeError: list expected at most 1 argument, got 2).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "task-error"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "task-error"]],
}
import dask


def squares(n):
    for i in range(n):
        yield i * i


def drain(gen_fn, n):
    return list(gen_fn(n))


result = dask.delayed(drain)(squares, 5)
expected = [0, 1, 4, 9, 16]
