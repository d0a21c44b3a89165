CASE = {
    "family": "hangs",
    "summary": "A plain cell run after a fault: the cluster must be whole again",
    "timeout": 10,
    "expect": "pass",
}
import dask

result = dask.delayed(sum)([1, 2])
expected = 3
