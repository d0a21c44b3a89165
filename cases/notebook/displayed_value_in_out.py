CASE = {
    "family": "notebook",
    "summary": "A cell that ends by displaying a dict; the task reads it back from the output history `Out`",
    "tags": ["ipython", "notebook", "history", "display", "by-value"],
    "contexts": ["kernel"],
    # The displayed value goes into Out only when the cell has finished, i.e. before the compute
    # cell pickles the task. `Out` is a plain dict: cloudpickle ships a snapshot of it with the
    # __main__ function, and the worker reads its own copy of the displayed object.
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that travels by value
    # crashes the 3.11 worker that runs it (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask

cell_number = len(In) - 1  # Out is keyed by the same prompt number as In


def scaled(factor):
    shown = Out[cell_number]  # "the table I displayed above"
    return {key: value * factor for key, value in shown.items()}


result = dask.delayed(scaled)(10)


def check(value):
    # The premise too: Out holds the displayed object itself (the worker had a copy).
    return Out.get(cell_number) is weights and value == {"a": 10, "b": 20}


weights = {"a": 1, "b": 2}
weights  # the cell's last expression: displayed, and kept in Out[cell_number]
