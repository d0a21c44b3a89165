CASE = {
    "family": "notebook",
    "summary": "dask/dask#11448's notebook: a top-level pydantic model and a delayed function taking an instance",
    "tags": ["pydantic", "namespace-capture", "dask-11448", "notebook"],
    "requires": ["pydantic"],
    "contexts": ["kernel"],
    "expect": "pass",
    "expect_when": [
        # The "working" call of the report: dask.compute has no client= parameter, and a client
        # made with set_as_default=False is not dask's scheduler: the threaded scheduler runs it.
        [{"method": "dask.compute(client=)"}, "ran-locally"],
        # Compiled pydantic 1.10: the by-value __main__ model drags its cython validators
        # along, which cannot be pickled (cloudpickle#408). No namespace is captured.
        [{"pydantic": "<2"}, "serialize-error"],
        # pydantic 2.11.0-2.11.3: the by-value class validates to an empty model on the worker
        # (pydantic-core#1616): "'JobConfig' object has no attribute 'n_items'".
        [{"pydantic": ">=2.11.0,<2.11.4"}, "task-error"],
        # The report: pydantic <= 2.8 keeps the notebook namespace (In, Out, get_ipython, client,
        # ...) in JobConfig.__pydantic_parent_namespace__; cloudpickle ships the __main__ class by
        # value, namespace included. First unpicklable: IPython's history sqlite3.Connection.
        # Both paths fail alike when the client is dask's scheduler. Fixed in 2.9.0 (pydantic#10113).
        [{"context": "kernel", "pydantic": "<2.9"}, "serialize-error"],
        # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what
        # travels by value and cannot pickle it again for a worker (Can't pickle <class '__main__.JobConfig'>:
        # attribute lookup JobConfig on __main__ failed); the worker is lost (KilledWorker).
        [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"],
    ],
}
import dask
from pydantic import BaseModel


class JobConfig(BaseModel):
    name: str
    n_items: int
    scale: float = 1.0


@dask.delayed
def my_delayed_function(config):
    # Uses the instance and its class on the worker: fields, and validation by the shipped class.
    again = type(config)(name=config.name, n_items=str(config.n_items))
    return config.name, sum(range(config.n_items)) * config.scale, again.n_items


result = my_delayed_function(JobConfig(name="run-1", n_items=5, scale=2))
expected = ("run-1", 20.0, 5)
