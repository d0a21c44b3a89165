CASE = {"family": "outcomes", "summary": "An object that pickles fine but cannot be unpickled anywhere else", "expect": "deserialize-error"}
import os

import dask


def _restore(pid):
    if os.getpid() != pid:
        raise RuntimeError("refusing to load outside the process that pickled me")
    return Token()


class Token:
    def __reduce__(self):
        return (_restore, (os.getpid(),))


result = dask.delayed(lambda t: 1)(Token())
expected = 1
