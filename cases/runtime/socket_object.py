CASE = {
    "family": "runtime",
    "summary": "An unconnected socket.socket passed to a task",
    "tags": ["socket", "unpicklable"],
    "expect": "serialize-error",
}
import socket

import dask

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def describe(s):
    return s.family.name, s.type.name


result = dask.delayed(describe)(sock)
expected = ("AF_INET", "SOCK_STREAM")
