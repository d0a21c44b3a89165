CASE = {
    "family": "pydantic",
    "summary": "One sub-model class used in two fields of another model (pydantic#12696)",
    "tags": ["pydantic", "definitions", "by-value", "pydantic-12696"],
    "requires": ["pydantic"],
    "expect": "pass",
    # 2.11.0-2.12.5: the by-value class loads, but its instances lose attributes
    # (AttributeError on the worker); fixed in 2.13.0. Seen with pydantic 2.12.5.
    # In a notebook, pydantic <= 2.8: the top-level models capture the notebook namespace
    # (sqlite3.Connection of IPython's history); see toplevel_model.
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],  # compiled 1.10: cloudpickle#408
                    [{"pydantic": ">=2.11,<2.13"}, "task-error"],
                    [{"context": "kernel", "pydantic": ">=2,<2.9"}, "serialize-error"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic._internal').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler
                    # rebuilds what travels by value and cannot pickle it again for a worker (Can't pickle <class
                    # '__main__.Customer'>: attribute lookup Customer on __main__ failed); the worker is lost
                    # (KilledWorker).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
import dask
from pydantic import BaseModel


class Address(BaseModel):
    city: str
    zip: str


class Customer(BaseModel):
    home: Address
    work: Address


def on_worker(c):
    fresh = type(c)(home={"city": "Oslo", "zip": "0150"}, work={"city": "Bergen", "zip": "5003"})
    return c.home.city, c.work.zip, fresh.work.city


result = dask.delayed(on_worker)(
    Customer(home={"city": "Lyon", "zip": "69001"}, work={"city": "Paris", "zip": "75001"})
)
expected = ("Lyon", "75001", "Bergen")
