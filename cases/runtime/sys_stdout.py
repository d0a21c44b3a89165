CASE = {
    "family": "runtime",
    "summary": "sys.stdout passed to a task: it arrives as the worker's own sys.stdout",
    "tags": ["file", "io", "stdio", "by-reference"],
    "expect": "pass",
    # In a kernel sys.stdout is ipykernel's OutStream, not an io.TextIOWrapper: cloudpickle's
    # by-reference rule for sys.stdout does not apply, and pickling the stream by value reaches
    # its jupyter_client Session and the Session's HMAC signer ("cannot pickle '_hashlib.HMAC'").
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"],
                    [{"context": "kernel"}, "serialize-error"],
                    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.11 scheduler
                    # rebuilds what travels by value and cannot pickle it again for a worker (TypeError: cannot pickle
                    # '_io.TextIOWrapper' object); the worker is lost (KilledWorker).
                    [{"python": "3.12", "cluster_python": "3.11"}, "worker-died"]],
}
import sys

import dask


def emit(stream):
    # Write nothing: the worker's stdout is the harness's terminal.
    return stream is sys.stdout, stream.writable(), stream.write("")


result = dask.delayed(emit)(sys.stdout)
expected = (True, True, 0)
