CASE = {
    "family": "misc",
    "summary": "A dict that contains itself, captured by the task function, which walks the cycle",
    "tags": ["cycle", "recursion", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that travels by value
    # crashes the 3.11 worker that runs it (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask

node = {"name": "loop"}
node["self"] = node
# Captured rather than passed as an argument: dask.delayed's argument traversal
# (unpack_collections) recurses into the cycle and raises RecursionError in the cell.


def walk(steps):
    d = node
    for _ in range(steps):
        d = d["self"]
    return d["name"], d is node, d["self"] is d


result = dask.delayed(walk)(3)
expected = ("loop", True, True)
