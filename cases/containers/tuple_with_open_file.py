CASE = {
    "family": "containers",
    "summary": "A tuple holding a delayed value and an open text file: neither method gives the file back",
    "tags": ["container", "file", "iterator", "path-difference", "identity"],
    # dask.compute: a file is an Iterator, so unpack_collections reads it to a list of
    # lines on the client (the handle is left at EOF).
    # Client.compute: the tuple is shipped; cloudpickle snapshots the file into an
    # io.StringIO, and that StringIO comes back in place of the handle.
    "expect": "wrong-result",
}
import io
import string

import dask

handle = open(string.__file__)  # a notebook cell has no __file__ of its own
result = (dask.delayed(sum)([1, 2, 3]), handle)


def check(value):
    total, fh = value
    return total == 6 and fh is handle and isinstance(fh, io.TextIOWrapper)
