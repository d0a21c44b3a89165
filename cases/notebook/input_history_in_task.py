CASE = {
    "family": "notebook",
    "summary": "A task function that reads this cell's source from the notebook's input history `In`",
    "tags": ["ipython", "notebook", "history", "by-value"],
    "contexts": ["kernel"],
    # `In` is a plain list of strings: cloudpickle ships a snapshot of it with the __main__
    # function (the whole session's history, every earlier cell included).
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (Can't pickle <function defines>: attribute lookup defines on
    # __main__ failed); the worker is lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask

cell_number = len(In) - 1  # this cell's entry: In holds the running cell already


def defines(n, name):
    source = In[n]
    return f"def {name}(" in source, source.count("\n") + 1


result = dask.delayed(defines)(cell_number, "defines")
expected = (True, In[cell_number].count("\n") + 1)
