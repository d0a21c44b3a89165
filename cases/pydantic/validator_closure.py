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
                    [{"pydantic": ">=2.11.0,<2.11.4"}, "task-error"]],
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
