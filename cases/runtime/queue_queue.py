CASE = {
    "family": "runtime",
    "summary": "A queue.Queue with items in it, passed to a task that drains it",
    "tags": ["queue", "lock", "unpicklable"],
    "expect": "serialize-error",
}
import queue

import dask

q = queue.Queue()
for item in (1, 2, 3):
    q.put(item)


def drain(qq):
    out = []
    while not qq.empty():
        out.append(qq.get_nowait())
    return out


result = dask.delayed(drain)(q)
expected = [1, 2, 3]
