CASE = {
    "family": "pydantic",
    "summary": "A __main__ model whose validators normalise its fields: instances built on the worker come back checked field by field",
    "tags": ["pydantic", "validator", "by-value", "argument", "round-trip", "silently-wrong"],
    "requires": ["pydantic"],
    "expect": "pass",
    # Compiled pydantic 1.10: cloudpickle#408; in a notebook, pydantic <= 2.8 captures the notebook's namespace
    # (see toplevel_model). pydantic 2.11.0-2.11.3: the worker validates to an empty `Contact()`, which comes back
    # with no error (pydantic-core#1616, fixed in 2.11.4).
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"pydantic": "<2"}, "serialize-error"],
                    [{"context": "kernel", "pydantic": ">=2,<2.9"}, "serialize-error"],
                    [{"pydantic": ">=2.11.0,<2.11.4"}, "wrong-result"]],
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
