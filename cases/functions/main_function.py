CASE = {
    "family": "functions",
    "summary": "A plain function defined at the top level of __main__, pickled by value (its code object travels)",
    "tags": ["by-value"],
    "expect": "pass",
}
import dask


def middle(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


result = dask.delayed(middle)([5, 1, 4, 2, 3])
expected = 3
