CASE = {"family": "stages", "summary": "An argument that pickles on the client but whose rebuild raises on load",
        "expect": "deserialize-error", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import dask


def _rebuild(tag):
    raise ValueError(f"cannot rebuild {tag} here")


class LoadBomb:
    def __reduce__(self):
        return (_rebuild, ("LoadBomb",))


result = dask.delayed(lambda x: 1)(LoadBomb())
expected = 1
