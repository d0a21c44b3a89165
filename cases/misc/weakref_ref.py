CASE = {
    "family": "misc",
    "summary": "A weakref.ref to a live object passed to a task that dereferences it",
    "tags": ["weakref", "unpicklable"],
    "expect": "serialize-error",
}
import weakref

import dask


class Node:
    def __init__(self, name):
        self.name = name


node = Node("root")
ref = weakref.ref(node)


def deref(r):
    target = r()
    return None if target is None else target.name


result = dask.delayed(deref)(ref)
expected = "root"
