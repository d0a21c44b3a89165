CASE = {
    "family": "pydantic",
    "summary": "A __main__ model whose validators normalise its fields, rebuilt on the worker: checked field by field",
    "tags": ["pydantic", "validator", "by-value", "argument", "round-trip", "silently-wrong"],
    "requires": ["pydantic"],
    "expect": "pass",
    # Compiled pydantic 1.10: cloudpickle#408; in a notebook, pydantic <= 2.8 captures the notebook's namespace
    # (see toplevel_model). pydantic 2.11.0-2.11.3: the worker validates to an empty `Contact()`, which comes back
    # with no error (pydantic-core#1616, fixed in 2.11.4).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],
                    [{"context": "kernel", "pydantic": ">=2,<2.9"}, "serialize-error"],
                    [{"pydantic": ">=2.11.0,<2.11.4"}, "wrong-result"],
                    # A pydantic v2 client on pydantic v1 workers (skew pair pydantic-v2-client-v1-cluster, 2.8.2 on
                    # 1.10.21): the workers cannot rebuild what the client's pydantic sends (No module named
                    # 'pydantic._internal').
                    [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
                    # A pydantic 2.9 client on 2.8 workers (skew pair pydantic-client-ahead, 2.9.2 on 2.8.2): 2.8
                    # cannot rebuild a 2.9 field validator ('FieldValidatorDecoratorInfo' object has no attribute
                    # 'json_schema_input_type').
                    [{"pydantic": "2.9", "cluster_pydantic": "2.8"}, "deserialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler
                    # rebuilds what travels by value and cannot pickle it again for a worker (Can't pickle <class
                    # '__main__.Contact'>: attribute lookup Contact on __main__ failed); the worker is lost
                    # (KilledWorker).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
import dask
import pydantic
from pydantic import BaseModel

V1 = pydantic.VERSION.startswith("1.")

if V1:

    class Contact(BaseModel):
        email: str
        country: str = "fr"

        @pydantic.validator("email")
        def lower_email(cls, v):
            return v.strip().lower()

        @pydantic.validator("country")
        def upper_country(cls, v):
            return v.upper()

else:

    class Contact(BaseModel):
        email: str
        country: str = "fr"

        @pydantic.field_validator("email")
        @classmethod
        def lower_email(cls, v):
            return v.strip().lower()

        @pydantic.field_validator("country")
        @classmethod
        def upper_country(cls, v):
            return v.upper()


def read(obj, names=("email", "country")):
    # what the object holds, read without raising: a value that lost a field is wrong, not a broken case
    out = {}
    for name in names:
        try:
            out[name] = getattr(obj, name)
        except Exception as e:
            out[name] = f"<{type(e).__name__}>"
    return out


def register(contact, raw_email, raw_country):
    # on the worker: the instance that arrived, and one validated there from raw input, by the class that arrived
    fresh = type(contact)(email=raw_email, country=raw_country)
    return contact, fresh, read(fresh)


result = dask.delayed(register)(Contact(email="  Ada@Example.ORG "), " Bob@Example.COM", "de")


def check(value):
    if not (isinstance(value, tuple) and len(value) == 3):
        return False
    sent, fresh, seen = value
    want_fresh = {"email": "bob@example.com", "country": "DE"}
    return (type(sent).__name__ == "Contact" and read(sent) == {"email": "ada@example.org", "country": "fr"}
            and type(fresh).__name__ == "Contact" and read(fresh) == want_fresh and seen == want_fresh)
