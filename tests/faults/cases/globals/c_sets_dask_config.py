CASE = {"family": "globals", "summary": "A notebook that sets dask.config for the rest of the process, not in a with block",
        "expect": "pass", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import dask

dask.config.set({"picklematrix-faults.poisoned": "globals/c_sets_dask_config"})
result = dask.delayed(lambda: dask.config.get("picklematrix-faults.poisoned", None))()
expected = None  # the workers have their own config: the setting stayed in the notebook's process
