CASE = {
    "family": "pydantic",
    "summary": "A __main__ model instance as a task argument, a new one sent back: both checked field by field",
    "tags": ["pydantic", "by-value", "argument", "round-trip", "silently-wrong"],
    "requires": ["pydantic"],
    "expect": "pass",
    # Compiled pydantic 1.10: the by-value model drags its cython validators along (cloudpickle#408). In a
    # notebook, pydantic <= 2.8 captures the notebook's namespace in the top-level models (see toplevel_model).
    # pydantic 2.11.0-2.11.3: the instance the worker builds from the by-value class comes back empty, `Order()`,
    # with no error anywhere (pydantic-core#1616, fixed in 2.11.4): a silently wrong value, found by this case.
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],
                    [{"context": "kernel", "pydantic": ">=2,<2.9"}, "serialize-error"],
                    [{"pydantic": ">=2.11.0,<2.11.4"}, "wrong-result"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic._internal').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler
                    # rebuilds what travels by value and cannot pickle it again for a worker (Can't pickle <class
                    # '__main__.Order'>: attribute lookup Order on __main__ failed); the worker is lost
                    # (KilledWorker).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
from typing import Optional

import dask
from pydantic import BaseModel


class Address(BaseModel):
    city: str
    zip: str


class Order(BaseModel):
    sku: str
    quantity: int
    price: float
    tags: list = []
    ship_to: Address
    note: Optional[str] = None


FIELDS = ("sku", "quantity", "price", "tags", "note")


def read(obj, names):
    # what the object holds, read without raising: a value that lost a field is wrong, not a broken case
    out = {}
    for name in names:
        try:
            out[name] = getattr(obj, name)
        except Exception as e:
            out[name] = f"<{type(e).__name__}>"
    return out


def reprice(order, factor):
    # on the worker: what arrived, field by field, and a new instance of the same class built from it
    seen = dict(read(order, FIELDS), city=read(order.ship_to, ("city",))["city"])
    doubled = type(order)(sku=order.sku, quantity=order.quantity * 2, price=order.price * factor,
                          tags=order.tags + ["repriced"], ship_to=order.ship_to, note="by worker")
    return order, doubled, seen


sent = Order(sku="A-17", quantity=3, price=9.5, tags=["fragile"], ship_to=Address(city="Lyon", zip="69001"))
result = dask.delayed(reprice)(sent, 2.0)

WANT_SEEN = {"sku": "A-17", "quantity": 3, "price": 9.5, "tags": ["fragile"], "note": None, "city": "Lyon"}
WANT_BACK = {"sku": "A-17", "quantity": 3, "price": 9.5, "tags": ["fragile"], "note": None}
WANT_NEW = {"sku": "A-17", "quantity": 6, "price": 19.0, "tags": ["fragile", "repriced"], "note": "by worker"}


def same_model(obj, want):
    return (type(obj).__name__ == "Order" and read(obj, FIELDS) == want
            and read(getattr(obj, "ship_to", None), ("city", "zip")) == {"city": "Lyon", "zip": "69001"})


def check(value):
    if not (isinstance(value, tuple) and len(value) == 3):
        return False
    back, new, seen = value
    return seen == WANT_SEEN and same_model(back, WANT_BACK) and same_model(new, WANT_NEW)
