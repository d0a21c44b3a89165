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
                    [{"pydantic": ">=2.11.0,<2.11.4"}, "wrong-result"]],
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
