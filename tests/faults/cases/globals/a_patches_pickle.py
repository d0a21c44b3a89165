CASE = {"family": "globals", "summary": "A notebook that patches pickle.dumps and cloudpickle.dumps for the whole process",
        "expect": "serialize-error", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import pickle

import cloudpickle
import dask


def poisoned_dumps(*args, **kwargs):
    raise RuntimeError("pickle.dumps was patched by globals/a_patches_pickle")


pickle.dumps = cloudpickle.dumps = poisoned_dumps
result = dask.delayed(lambda x: x + 1)(1)
expected = 2
