CASE = {
    "family": "misc",
    "summary": "A list nested 100000 levels deep, captured by the task function",
    "tags": ["recursion", "deep", "unpicklable"],
    "expect": "serialize-error",
}
import dask

deep = []
for _ in range(100_000):
    deep = [deep]


def depth(_):
    # Iterative: the worker could count it without recursing.
    d, node = 0, deep
    while node:
        node = node[0]
        d += 1
    return d


result = dask.delayed(depth)(None)
expected = 100_000
