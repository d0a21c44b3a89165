CASE = {
    "family": "functions",
    "summary": "A __main__ function closing over free variables of an enclosing function",
    "tags": ["closure", "by-value"],
    "expect": "pass",
}
import dask


def make_affine(scale, offset):
    def affine(x):
        return scale * x + offset

    return affine


affine = make_affine(3, 4)
result = dask.delayed(affine)(5)
expected = 19
