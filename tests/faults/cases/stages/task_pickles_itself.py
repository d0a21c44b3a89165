CASE = {"family": "stages", "summary": "A task that pickles the callable it was given, as a process pool does, and fails",
        "expect": "task-error", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import pickle

import dask


def run_in_a_pool(fn, x):
    # what ProcessPoolExecutor.submit does with its callable: pickle it by reference for another process
    return pickle.loads(pickle.dumps(fn))(x)


result = dask.delayed(run_in_a_pool)(lambda v: v + 1, 1)
expected = 2
