from __future__ import annotations  # PEP 563: every annotation in this cell is a string

CASE = {
    "family": "pydantic",
    "summary": "pydantic#12696's two-field sub-model under `from __future__ import annotations`",
    "tags": ["pydantic", "definitions", "by-value", "pep563", "pydantic-12696"],
    "requires": ["pydantic"],
    "expect": "pass",
    # With string annotations the by-value class cannot even be rebuilt from pydantic 2.11 on
    # (KeyError: 'type' while the scheduler unpickles the graph); the 2.13.0 fix for #12696
    # does not cover it. Seen with 2.12.5 and 2.14.4; 2.8.2 (and 2.9.2, 2.10.6 in a plain
    # cloudpickle round trip) load fine. One sub-model field alone loads fine.
    # In a notebook, pydantic <= 2.8: the top-level models capture the notebook namespace
    # (sqlite3.Connection of IPython's history); see toplevel_model.
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],  # compiled 1.10: cloudpickle#408
                    # measured: fails with cloudpickle 3.1.2 and 3.1.3, passes with 3.0.0 (dask
                    # 2026.8.0, pydantic 2.14.4); 3.1.0/3.1.1 not measured with pydantic >= 2.11
                    [{"pydantic": ">=2.11", "cloudpickle": ">=3.1"}, "deserialize-error"],
                    [{"context": "kernel", "pydantic": ">=2,<2.9"}, "serialize-error"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic._internal').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"]],
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
