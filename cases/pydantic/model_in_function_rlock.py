CASE = {
    "family": "pydantic",
    "summary": "A model defined inside a function whose locals hold an RLock that is still alive when pickled",
    "tags": ["pydantic", "namespace-capture", "lock", "dask-11448"],
    "requires": ["pydantic"],
    # pydantic 2.x keeps the defining function's locals in Model.__pydantic_parent_namespace__
    # (weakly where it can: the RLock is held by a _PydanticWeakRef, which pickles its referent
    # while it is alive), so a by-value pickle of the class takes the RLock along.
    # Compiled pydantic 1.10 captures no locals, but fails earlier on its cython validators
    # (cloudpickle#408): serialize-error everywhere, for different root causes.
    "expect": "serialize-error",
}
import threading

import dask
from pydantic import BaseModel

registry_lock = threading.RLock()  # lives as long as the notebook


def build_job_model(lock):
    with lock:

        class Job(BaseModel):
            name: str
            retries: int = 3

    return Job


Job = build_job_model(registry_lock)


def on_worker(job):
    return job.name, job.retries, type(job)(name="b", retries="5").retries


result = dask.delayed(on_worker)(Job(name="a"))
expected = ("a", 3, 5)
