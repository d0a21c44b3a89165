CASE = {
    "family": "containers",
    "summary": "A list holding a delayed value and a live generator: dask.compute drains it, Client.compute ships it",
    "tags": ["container", "generator", "iterator", "path-difference"],
    # dask.compute's unpack_collections treats any Iterator as a list: the generator is
    # consumed on the client and comes back as [0, 1, 4] (2024.6.2 and 2026.8.0).
    # Client.compute wraps the list in dask.delayed, so the generator goes into the graph.
    "expect": "wrong-result",
    "expect_when": [[{"method": "Client.compute"}, "serialize-error"]],
}
import dask

pending = (n * n for n in range(3))
result = [dask.delayed(max)([4, 9, 2]), pending]


def check(value):
    # The generator should come back as itself, unconsumed.
    return value[0] == 9 and value[1] is pending and list(value[1]) == [0, 1, 4]
