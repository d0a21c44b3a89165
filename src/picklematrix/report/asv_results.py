"""Reading asv's result files: loading one, its values per cell, and the outcome codes it stores."""

from __future__ import annotations

import ast
import itertools
import math

from picklematrix.outcomes import CODE_OUTCOMES, HARNESS_ERROR
from picklematrix.run.selection import OUTCOME
from picklematrix.versions import ABSENT


def load(path, machine: str):
    """(the asv result at ``path``, None), or (None, what is wrong with the file)."""
    from asv import util as asv_util
    from asv.results import Results

    try:
        return Results.load(str(path), machine_name=machine), None
    except asv_util.UserError as e:
        return None, f"not a loadable asv result (truncated or corrupt?): {e}"
    except (KeyError, TypeError, ValueError) as e:
        return None, f"not an asv result file: {type(e).__name__}: {e}"


def isna(value) -> bool:
    """asv's "no value": None (failed) or NaN (skipped, n/a)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def param_value(text) -> str:
    """An asv param value as the harness names it: asv stores their repr (``"'functions/lambda_square'"``)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return str(text)
    return value if isinstance(value, str) else str(value)


def unrolled(result, key) -> dict:
    """{(case, method, context): (value, stats, samples)} of one benchmark in one asv result."""
    params = result.get_result_params(key)
    if not params:
        return {}
    # asv stores a parameterized result in this order; each param's text is read once (a full profile's results
    # have 177,000 combinations)
    combos = list(itertools.product(*([param_value(v) for v in values] for values in params)))

    def column(values):
        return values if values is not None else [None] * len(combos)

    columns = (result.get_result_value(key, params), result.get_result_stats(key, params),
               result.get_result_samples(key, params))
    return {combo: (value, stat, sample) for combo, value, stat, sample in zip(combos, *map(column, columns))}


def asv_version(result, name: str) -> str | None:
    value = result.params.get(name)
    return None if value in (None, ABSENT) else value


def cells_from_codes(result) -> dict:
    """{(case, method, context): cell} from asv's outcome codes alone (no root causes): for a result whose
    sidecar is gone."""
    cells = {}
    for (case, method, context), (value, _stats, _samples) in unrolled(result, OUTCOME).items():
        if isna(value):
            continue
        family, _, case_id = case.partition("/")
        cells[(case, method, context)] = {
            "case": case_id, "family": family, "method": method, "context": context,
            "outcome": CODE_OUTCOMES.get(int(value), HARNESS_ERROR), "expected": None, "surprise": False,
            "root_cause": None, "seconds": None, "graph_bytes": None, "detail": "from asv's outcome code"}
    return cells
