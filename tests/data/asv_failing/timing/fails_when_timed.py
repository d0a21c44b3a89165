CASE = {"family": "timing", "summary": "Passes in the harness run, raises when asv times it", "expect": "pass"}
import os

import dask

# asv's benchmark processes have the sidecar's path; the harness run has not
if os.environ.get("PICKLEMATRIX_SIDECAR"):
    raise RuntimeError("only when asv times it")

result = dask.delayed(sum)([1, 2])
expected = 3
