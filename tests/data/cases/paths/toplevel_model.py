CASE = {"family": "paths", "summary": "A top-level pydantic model (captures its frame's locals on pydantic <= 2.8)",
        "expect": "pass", "requires": ["pydantic"]}
import dask
from pydantic import BaseModel


class Point(BaseModel):
    x: int


def get_x(p):
    return p.x


result = dask.delayed(get_x)(Point(x=3))
expected = 3
