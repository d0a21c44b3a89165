CASE = {"family": "globals", "summary": "A notebook that registers a refusing reducer for Fraction in copyreg.dispatch_table",
        "expect": "serialize-error", "timeout": 20, "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]]}
import copyreg
from fractions import Fraction

import dask


def refuse(value):
    raise RuntimeError("Fraction was made unpicklable by globals/b_registers_copyreg")


copyreg.pickle(Fraction, refuse)
result = dask.delayed(lambda xs: sum(xs))([Fraction(1, 2), Fraction(1, 2)])
expected = Fraction(1)
