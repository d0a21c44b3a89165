CASE = {
    "family": "functions",
    "summary": "A plain function defined at the top level of __main__, pickled by value (its code object travels)",
    "tags": ["by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that travels by value
    # crashes the 3.11 worker that runs it (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask


def middle(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


result = dask.delayed(middle)([5, 1, 4, 2, 3])
expected = 3
