CASE = {
    "family": "methods",
    "summary": "The staticmethod descriptor object itself (Class.__dict__[name]) shipped as data",
    "tags": ["staticmethod", "descriptor", "by-value"],
    "expect": "pass",
}
import dask


class Tools:
    @staticmethod
    def triple(x):
        return 3 * x


raw = Tools.__dict__["triple"]
assert isinstance(raw, staticmethod)


def use_descriptor(sm, x):
    # On the worker: still a staticmethod wrapping a working function.
    return type(sm).__name__, sm.__func__(x), sm.__get__(None, object)(x)


result = dask.delayed(use_descriptor)(raw, 7)
expected = ("staticmethod", 21, 21)
