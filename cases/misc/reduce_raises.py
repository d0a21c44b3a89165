CASE = {
    "family": "misc",
    "summary": "An object whose __reduce__ raises, passed to a task",
    "tags": ["reduce", "unpicklable"],
    "expect": "serialize-error",
}
import dask


class Handle:
    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        raise RuntimeError("Handle objects are process-local")


def on_worker(h):
    return h.value


result = dask.delayed(on_worker)(Handle(5))
expected = 5
