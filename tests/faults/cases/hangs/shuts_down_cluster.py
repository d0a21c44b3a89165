CASE = {
    "family": "hangs",
    "summary": "A cell that shuts the cluster down (client.shutdown(): scheduler and workers end)",
    "timeout": 2,
    "expect": "harness-error",
    # whatever the method: the cell shut the cluster down before computing
    "expect_when": [[{"method": "dask.compute(client=)"}, "harness-error"]],
}
import dask

client.shutdown()  # noqa: F821 - the harness binds `client`

result = dask.delayed(sum)([1, 2])
expected = 3
