CASE = {
    "family": "misc",
    "summary": "dict.keys(), dict.values() and dict.items() views passed to a task",
    "tags": ["dict-view", "by-value"],
    "expect": "pass",
    # A Python 3.12 client on a 3.11 cluster (skew pair python-client-ahead): the 3.12 code that travels by value
    # crashes the 3.11 worker that runs it (SIGSEGV).
    "expect_when": [[{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
                    [{"python": "3.12", "cluster_python": "3.11", "method": "dask.compute"}, "worker-died"]],
}
import dask

stock = {"apples": 3, "pears": 5, "plums": 0}


def on_worker(keys, values, items):
    return (
        [type(v).__name__ for v in (keys, values, items)],
        sorted(keys),
        sum(values),
        sorted(k for k, n in items if n),
        "pears" in keys,
    )


result = dask.delayed(on_worker)(stock.keys(), stock.values(), stock.items())
expected = (["dict_keys", "dict_values", "dict_items"], ["apples", "pears", "plums"], 8, ["apples", "pears"], True)
