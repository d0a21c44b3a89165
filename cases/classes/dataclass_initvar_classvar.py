CASE = {
    "family": "classes",
    "summary": "A __main__ dataclass with InitVar and ClassVar: fields() on the worker must list only real fields",
    "tags": ["dataclass", "InitVar", "ClassVar", "by-value", "cloudpickle-513"],
    "expect": "pass",
    # cloudpickle < 3.0 rebuilt the dataclass field markers by value (fixed by #513 in 3.0.0):
    # on the worker dataclasses.fields() is empty. Seen with cloudpickle 2.2.1 (dask 2024.6.2).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"cloudpickle": "<3"}, "wrong-result"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler
                    # cannot rebuild a 3.12 dataclass ('_DataclassParams' object has no attribute 'match_args').
                    [{"python": "3.12", "cluster_python": "3.11"}, "deserialize-error"]],
}
import dataclasses
from dataclasses import InitVar, dataclass, field
from typing import ClassVar

import dask


@dataclass
class Order:
    unit_price: float
    quantity: int
    discount: InitVar[float] = 0.0
    currency: ClassVar[str] = "EUR"
    total: float = field(init=False)

    def __post_init__(self, discount):
        self.total = self.unit_price * self.quantity * (1 - discount)


def inspect_on_worker(order):
    cls = type(order)
    fresh = cls(2.0, 5, discount=0.5)  # InitVar still reaches __post_init__
    return (
        [f.name for f in dataclasses.fields(cls)],
        dataclasses.asdict(order),
        cls.currency,
        fresh.total,
    )


result = dask.delayed(inspect_on_worker)(Order(10.0, 3, discount=0.1))
expected = (["unit_price", "quantity", "total"], {"unit_price": 10.0, "quantity": 3, "total": 27.0}, "EUR", 5.0)
