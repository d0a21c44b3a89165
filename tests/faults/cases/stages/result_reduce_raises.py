CASE = {"family": "stages", "summary": "The task returns an object whose __reduce__ raises: the worker cannot send it back",
        "expect": "serialize-error", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import dask


class ResultHandle:
    def __reduce__(self):
        raise RuntimeError(f"ResultHandle at 0x{id(self):x} is process-local")


def make_handle():
    return ResultHandle()


result = dask.delayed(make_handle)()
expected = None
