CASE = {
    "family": "methods",
    "summary": "A staticmethod of a __main__ class, looked up on the class, used as the task function",
    "tags": ["staticmethod", "by-value"],
    "expect": "pass",
}
import dask


class Geometry:
    @staticmethod
    def hypot(a, b):
        return (a * a + b * b) ** 0.5


assert Geometry.hypot.__qualname__ == "Geometry.hypot"
result = dask.delayed(Geometry.hypot)(3, 4)
expected = 5.0
