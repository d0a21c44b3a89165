CASE = {
    "family": "runtime",
    "summary": "A binary file open for reading (io.BufferedReader) passed to a task",
    "tags": ["file", "io", "binary", "unpicklable"],
    "expect": "serialize-error",
}
import dask

with open(__file__, "rb") as f:
    head = f.read(8)

reader = open(__file__, "rb")


def first_bytes(fh):
    return fh.read(8)


result = dask.delayed(first_bytes)(reader)
expected = head
