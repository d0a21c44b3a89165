CASE = {
    "family": "classes",
    "summary": "A typing.NamedTuple with a default and a method, defined in __main__, used on the worker",
    "tags": ["typing", "NamedTuple", "by-value", "cloudpickle-2.1"],
    "expect": "pass",
    # cloudpickle < 2.2.1 pickles the class by value without its __module__ entry: loading it on the
    # worker fails (KeyError: '__module__'). Found by bisecting cloudpickle 2.1.0..2.2.1 on dask 2024.6.2.
    "expect_when": [
        [{"method": "dask.compute", "cloudpickle": "<2.2.1"}, "deserialize-error"],
        [{"method": "Client.compute", "cloudpickle": "<2.2.1"}, "deserialize-error"],
        # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): unpickling what travels by value
        # crashes the 3.11 scheduler (SIGSEGV).
        [{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
        [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"],
    ],
}
from typing import NamedTuple

import dask


class Reading(NamedTuple):
    sensor: str
    value: float
    unit: str = "C"

    def label(self):
        return f"{self.sensor}={self.value}{self.unit}"


def on_worker(r):
    return r.label(), r._replace(value=r.value + 1).value, r._fields, type(r)._field_defaults


result = dask.delayed(on_worker)(Reading("t1", 20.5))
expected = ("t1=20.5C", 21.5, ("sensor", "value", "unit"), {"unit": "C"})
