CASE = {
    "family": "notebook",
    "summary": "A task function that closes over the notebook's Client (made in an earlier cell) and calls it",
    "tags": ["client", "closure", "notebook", "unpicklable", "dask-11448"],
    "contexts": ["kernel"],
    # A Client cannot travel: its IO loop's asyncio Task (and more) is in its state.
    "expect": "serialize-error",
}
import dask


def make_plus_workers(c):
    def plus_workers(x):
        return len(c.scheduler_info()["workers"]) + x

    return plus_workers


plus_workers = make_plus_workers(client)  # `client`: the notebook's Client, from the cell before
result = dask.delayed(plus_workers)(1)


def check(value):
    return value == len(client.scheduler_info()["workers"]) + 1
