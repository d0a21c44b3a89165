CASE = {"family": "stages", "summary": "The task returns an object whose rebuilding crashes the process that unpickles it",
        "expect": "client-died", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import dask


def _rebuild(tag):
    import ctypes

    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a function's code from another Python can


class Crasher:
    def __reduce__(self):
        return (_rebuild, ("Crasher",))


def make():
    return Crasher()


result = dask.delayed(make)()


def check(value):
    return isinstance(value, Crasher)
