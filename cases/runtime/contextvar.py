CASE = {
    "family": "runtime",
    "summary": "A contextvars.ContextVar passed to a task that reads it",
    "tags": ["contextvars", "unpicklable"],
    "expect": "serialize-error",
}
import contextvars

import dask

request_id = contextvars.ContextVar("request_id", default="none")
request_id.set("r-17")


def read_var(var):
    return var.name, var.get()


result = dask.delayed(read_var)(request_id)
expected = ("request_id", "none")  # a worker thread has its own context: only the default is visible
