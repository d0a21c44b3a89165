CASE = {
    "family": "notebook",
    "summary": "A task function that calls get_ipython() to read a setting from the notebook namespace",
    "tags": ["ipython", "notebook", "shell", "unpicklable"],
    "contexts": ["kernel"],
    # `get_ipython` in a notebook namespace is a bound method of the running shell: cloudpickle
    # ships the __main__ function by value with that global, i.e. the whole InteractiveShell.
    "expect": "serialize-error",
}
import dask

threshold = 10


def above_threshold(values):
    limit = get_ipython().user_ns["threshold"]  # the live notebook setting
    return [v for v in values if v > limit]


result = dask.delayed(above_threshold)([5, 12, 30])
expected = [12, 30]
