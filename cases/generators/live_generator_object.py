CASE = {
    "family": "generators",
    "summary": "A live, partly consumed generator object passed to a task",
    "tags": ["generator", "unpicklable"],
    "expect": "serialize-error",
}
import dask


def countdown(n):
    while n > 0:
        yield n
        n -= 1


gen = countdown(5)
next(gen)  # suspended mid-way: its frame holds n == 5
result = dask.delayed(list)(gen)
expected = [4, 3, 2, 1]
