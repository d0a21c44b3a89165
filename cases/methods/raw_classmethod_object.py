CASE = {
    "family": "methods",
    "summary": "The classmethod descriptor object itself (Class.__dict__[name]) shipped as data",
    "tags": ["classmethod", "descriptor", "by-value"],
    "expect": "pass",
}
import dask


class Registry:
    prefix = "reg"

    @classmethod
    def label(cls, x):
        return f"{cls.prefix}:{cls.__name__}:{x}"


raw = Registry.__dict__["label"]
assert isinstance(raw, classmethod)


class Other:
    prefix = "oth"


def use_descriptor(cm, x):
    # On the worker: bind the raw classmethod to a class built there.
    return type(cm).__name__, cm.__get__(None, Other)(x)


result = dask.delayed(use_descriptor)(raw, 1)
expected = ("classmethod", "oth:Other:1")
