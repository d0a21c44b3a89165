CASE = {
    "family": "runtime",
    "summary": "A contextvars.Context snapshot (copy_context) passed to a task that runs in it",
    "tags": ["contextvars", "unpicklable"],
    "expect": "serialize-error",
}
import contextvars

import dask

tenant = contextvars.ContextVar("tenant", default="?")
tenant.set("acme")
ctx = contextvars.copy_context()


def tenant_in(context):
    # The value as seen inside the snapshot, whatever thread runs this.
    return [context[var] for var in context if var.name == "tenant"]


result = dask.delayed(tenant_in)(ctx)
expected = ["acme"]
