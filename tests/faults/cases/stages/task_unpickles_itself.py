CASE = {"family": "stages", "summary": "A task that unpickles bytes it was given, and fails",
        "expect": "task-error", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import pickle

import dask


def load(payload):
    return pickle.loads(payload)


result = dask.delayed(load)(pickle.dumps([1, 2, 3])[:-4])
expected = [1, 2, 3]
