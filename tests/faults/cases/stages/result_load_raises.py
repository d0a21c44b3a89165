CASE = {"family": "stages", "summary": "The task returns an object that pickles on the worker but cannot be rebuilt on the client",
        "expect": "deserialize-error", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import dask


def _rebuild_result(tag):
    raise LookupError(f"{tag} cannot be rebuilt outside its worker")


class ReturnBomb:
    def __reduce__(self):
        return (_rebuild_result, ("ReturnBomb",))


result = dask.delayed(ReturnBomb)()
expected = None
