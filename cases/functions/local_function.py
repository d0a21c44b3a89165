CASE = {
    "family": "functions",
    "summary": "A function defined inside another function and returned (qualname has <locals>)",
    "tags": ["local", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (AttributeError: Can't pickle local object
    # 'factory.<locals>.shout'); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask


def factory():
    def shout(word, times):
        return (word.upper() + "!") * times

    return shout


shout = factory()
assert "<locals>" in shout.__qualname__
result = dask.delayed(shout)("hey", 2)
expected = "HEY!HEY!"
