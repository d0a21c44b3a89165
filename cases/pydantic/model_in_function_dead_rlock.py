CASE = {
    "family": "pydantic",
    "summary": "A model defined inside a function whose local RLock is gone by the time the model is pickled",
    "tags": ["pydantic", "namespace-capture", "lock", "weakref"],
    "requires": ["pydantic"],
    # pydantic 2.x captures the function's locals, but weakly where it can
    # (build_lenient_weakvaluedict): once the RLock is garbage, nothing unpicklable is left.
    "expect": "pass",
    # Compiled pydantic 1.10 (the usual wheels): a by-value __main__ model drags its
    # cython validators along, which cannot be pickled (cloudpickle#408).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],
                    # pydantic 2.11.0-2.11.3: a by-value unpickled model class validates to an empty
                    # model (pydantic-core#1616, fixed in 2.11.4): found by the default matrix.
                    [{"pydantic": ">=2.11.0,<2.11.4"}, "task-error"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic._internal').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that
                    # travels by value crashes the 3.11 worker that runs it (SIGSEGV).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
import threading

import dask
from pydantic import BaseModel


def build_job_model():
    guard = threading.RLock()  # only this frame refers to it
    with guard:

        class Job(BaseModel):
            name: str
            retries: int = 3

    return Job


Job = build_job_model()


def on_worker(job):
    return job.name, job.retries, type(job)(name="b", retries="5").retries


result = dask.delayed(on_worker)(Job(name="a"))
expected = ("a", 3, 5)
