CASE = {"family": "globals", "summary": "An innocent cell: passes unless an earlier cell left the process changed",
        "expect": "pass", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
from fractions import Fraction

import dask

# an earlier case's dask.config would be seen here, not on the workers
assert dask.config.get("picklematrix-faults.poisoned", None) is None, (
    f"dask.config set by {dask.config.get('picklematrix-faults.poisoned')}")
# a lambda goes through cloudpickle; Fraction through copyreg's dispatch table
result = dask.delayed(lambda xs: sum(xs))([Fraction(1, 2), Fraction(1, 2)])
expected = Fraction(1)
