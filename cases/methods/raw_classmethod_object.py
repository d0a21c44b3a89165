CASE = {
    "family": "methods",
    "summary": "The classmethod descriptor object itself (Class.__dict__[name]) shipped as data",
    "tags": ["classmethod", "descriptor", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler rebuilds what travels
    # by value and cannot pickle it again for a worker (TypeError: cannot pickle 'classmethod' object); the worker is
    # lost (KilledWorker).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
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
