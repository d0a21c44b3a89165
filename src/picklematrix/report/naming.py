"""How the report and the review name things in text: cells, and an env error's explanation."""

from __future__ import annotations


def error_explanation(message: str, limit: int = 1500) -> str:
    """An env error's message on one line, its explanation kept: uv's first lines say only which env and
    where ("cannot install ...", "Using Python ... environment at ..."); what matters follows
    ("No solution found ...", "because dask>=2026.8.0 depends on cloudpickle>=3.0.0 ...")."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lower().startswith(("error:", "×", "x "))
                  or "no solution found" in ln.lower()), 0)
    text = " ".join(lines[start:]) or " ".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cell_name(key) -> str:
    """``family/case method @context``: a cell as messages name it."""
    return f"{key[0]} {key[1]} @{key[2]}"


def name_cells(keys, limit: int = 10) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(cell_name(k) for k in keys[:limit]) + more
