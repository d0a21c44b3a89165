CASE = {
    "family": "hangs",
    "summary": "A cell that closes the client it was given before computing",
    "timeout": 2,
    "expect": "harness-error",
    # dask.compute finds no default client any more and runs the graph on local threads: it says so
    "expect_when": [[{"method": "dask.compute"}, "ran-locally"]],
}
import dask

client.close()  # noqa: F821 - the harness binds `client`

result = dask.delayed(sum)([1, 2])
expected = 3
