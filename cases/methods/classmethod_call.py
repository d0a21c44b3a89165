CASE = {
    "family": "methods",
    "summary": "A classmethod of a __main__ class (bound to the class) used as the task function",
    "tags": ["classmethod", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that travels by value
    # crashes the 3.11 worker that runs it (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask


class Temperature:
    offset = 273.15

    def __init__(self, kelvin):
        self.kelvin = kelvin

    @classmethod
    def from_celsius(cls, c):
        return cls(c + cls.offset)


def kelvin_of(t):
    return type(t).__name__, round(t.kelvin, 2)


result = dask.delayed(kelvin_of)(dask.delayed(Temperature.from_celsius)(20))
expected = ("Temperature", 293.15)
