CASE = {
    "family": "runtime",
    "summary": "A task function that uses the notebook's distributed Client (captured from the cell)",
    "tags": ["client", "closure", "unpicklable", "dask-11448"],
    "expect": "serialize-error",
}
import dask


def workers_plus(x):
    return len(client.scheduler_info()["workers"]) + x  # `client` is the cell's Client


result = dask.delayed(workers_plus)(1)
expected = 3  # two workers on the harness cluster
