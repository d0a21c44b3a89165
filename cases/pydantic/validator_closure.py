CASE = {
    "family": "pydantic",
    "summary": "A model built in a factory function whose field validator closes over the factory's argument",
    "tags": ["pydantic", "validator", "closure", "by-value"],
    "requires": ["pydantic"],
    "expect": "pass",
    # Compiled pydantic 1.10 (the usual wheels): a by-value __main__ model drags its
    # cython validators along, which cannot be pickled (cloudpickle#408).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],
                    # pydantic 2.11.0-2.11.3: a by-value unpickled model class validates to an empty
                    # model (pydantic-core#1616, fixed in 2.11.4): found by the default matrix.
                    [{"pydantic": ">=2.11.0,<2.11.4"}, "task-error"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic._internal').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
                    # A pydantic 2.9 client on 2.8 workers (skew pair pydantic-client-ahead, 2.9.2 on 2.8.2): 2.8
                    # cannot rebuild a 2.9 field validator ('FieldValidatorDecoratorInfo' object has no attribute
                    # 'json_schema_input_type').
                    [{"pydantic": "2.9", "cluster_pydantic": "2.8"}, "deserialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that
                    # travels by value crashes the 3.11 worker that runs it (SIGSEGV).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
import dask
import pydantic
from pydantic import BaseModel

V1 = pydantic.VERSION.startswith("1.")


def make_capped_model(limit):
    if V1:

        class Capped(BaseModel):
            x: int

            @pydantic.validator("x")
            def cap(cls, v):
                return min(v, limit)

    else:

        class Capped(BaseModel):
            x: int

            @pydantic.field_validator("x")
            @classmethod
            def cap(cls, v):
                return min(v, limit)

    return Capped


Capped = make_capped_model(10)


def validate_on_worker(model_cls, raw):
    return model_cls(x=raw).x


result = dask.delayed(validate_on_worker)(Capped, 99)
expected = 10
