CASE = {
    "family": "misc",
    "summary": "A module built in the cell with types.ModuleType (not importable anywhere) passed as data",
    "tags": ["module", "dynamic-module", "by-value"],
    "expect": "pass",
}
import types

import dask

helpers = types.ModuleType("notebook_helpers")
exec(
    "RATE = 0.2\n"
    "def with_tax(x):\n"
    "    return round(x * (1 + RATE), 2)\n",
    helpers.__dict__,
)


def on_worker(mod, x):
    import sys

    return mod.__name__, mod.with_tax(x), mod.RATE, "notebook_helpers" in sys.modules


result = dask.delayed(on_worker)(helpers, 10.0)
expected = ("notebook_helpers", 12.0, 0.2, False)
