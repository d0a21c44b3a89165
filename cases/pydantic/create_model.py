CASE = {
    "family": "pydantic",
    "summary": "A model made with pydantic.create_model in the cell; the worker validates new data with it",
    "tags": ["pydantic", "create_model", "dynamic-class", "by-value"],
    "requires": ["pydantic"],
    "expect": "pass",
    # Compiled pydantic 1.10 (the usual wheels): a by-value __main__ model drags its
    # cython validators along, which cannot be pickled (cloudpickle#408).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],
                    # pydantic 2.11.0-2.11.3: a by-value unpickled model class validates to an empty
                    # model (pydantic-core#1616, fixed in 2.11.4): found by the default matrix.
                    [{"pydantic": ">=2.11.0,<2.11.4"}, "wrong-result"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic._internal').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler
                    # rebuilds what travels by value and cannot pickle it again for a worker (Can't pickle <class
                    # '__main__.Settings'>: attribute lookup Settings on __main__ failed); the worker is lost
                    # (KilledWorker).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
import dask
from pydantic import create_model

Settings = create_model("Settings", host=(str, "localhost"), port=(int, ...))


def on_worker(s):
    fresh = type(s)(port="8080")  # coerced by the rebuilt validator
    dump = fresh.model_dump() if hasattr(fresh, "model_dump") else fresh.dict()
    return type(s).__name__, s.port, dump


result = dask.delayed(on_worker)(Settings(port=1))
expected = ("Settings", 1, {"host": "localhost", "port": 8080})
