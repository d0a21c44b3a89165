CASE = {
    "family": "functions",
    "summary": "A function defined inside another function and returned (qualname has <locals>)",
    "tags": ["local", "by-value"],
    "expect": "pass",
}
import dask


def factory():
    def shout(word, times):
        return (word.upper() + "!") * times

    return shout


shout = factory()
assert "<locals>" in shout.__qualname__
result = dask.delayed(shout)("hey", 2)
expected = "HEY!HEY!"
