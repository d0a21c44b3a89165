"""How the report and the review name things in text: cells, an env error's explanation, what tells apart envs
whose axes are the same (their extra pins), what of a requirements file an env installs, and which corpus a record
ran."""

from __future__ import annotations

import re
from pathlib import Path

from picklematrix.envs.ids import identity_extra
from picklematrix.versions import ABSENT, PACKAGES

# how many differing extra pins an env's label spells out before "+N other extra pins"
LABEL_PINS = 4


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


def _axes(rec) -> tuple:
    v = rec.versions or {}
    return (".".join((rec.python or "").split(".")[:2]),
            *(v.get(name) or ABSENT for name in PACKAGES))


def distinguish(recordings: list) -> None:
    """Set each recording's ``label_extra``, its extra pins whose versions differ from another recording's of the
    same axes, and ``extra_count``, how many extra pins it has: its label (:func:`extra_label`) tells apart two
    envs that differ only outside the axes (two freezes with another tornado: ``tornado 6.4.2``). And
    ``show_corpus``: records of several corpora are shown, so each label names its corpus (:func:`corpus_label`)."""
    corpora = {getattr(r, "case_digest", None) for r in recordings if not r.is_error}
    for rec in recordings:  # records of several corpora: each label names its own
        rec.show_corpus = len(corpora) > 1
    groups: dict = {}
    for rec in recordings:
        if not rec.is_error and rec.python:
            groups.setdefault(_axes(rec), []).append(rec)
    for group in groups.values():
        extras = [identity_extra(r.extra) for r in group]
        differ = {n for e in extras for n in e if len({x[n] for x in extras if n in x}) > 1}
        for rec, extra in zip(group, extras):
            rec.label_extra = {n: v for n, v in extra.items() if n in differ}
            rec.extra_count = len(extra)


def extra_label(rec) -> list[str]:
    """The label lines of a recording's extra pins: those that differ from its siblings', then how many more
    (an env of the axes alone has none)."""
    shown = list((rec.label_extra or {}).items())[:LABEL_PINS]
    lines = [f"{name} {version}" for name, version in shown]
    more = rec.extra_count - len(shown)
    if more > 0:
        lines.append(f"+{more} {'other ' if shown else ''}extra pin{'s' if more > 1 else ''}")
    return lines


def source_label(requirements: dict) -> list[str]:
    """The label line of an env read from a requirements file (a record's ``requirements``): ``approximate (N
    lines skipped)`` when some of its lines are not installed, ``needed pins only`` with ``--pins needed``."""
    if not requirements:
        return []
    lines = []
    skipped = len(requirements.get("skipped") or [])
    if skipped:
        lines.append(f"approximate ({skipped} line{'s' if skipped != 1 else ''} skipped)")
    if requirements.get("pins") == "needed":
        lines.append(f"needed pins only ({len(requirements.get('left_out') or [])} left out)")
    return lines


def source_note(requirements: dict, limit: int = 4) -> str:
    """A record's requirements file in one sentence: which file, and what of it is not installed, by reason
    (``125 a local path: annotated-types (line 2), ...; 1 an editable install: vascular-superenhancement (line 242)``)."""
    skipped = requirements.get("skipped") or []
    text = f"read from {requirements.get('file', '?')}"
    if skipped:
        kinds: dict = {}
        for s in skipped:
            kind = re.split(r" \(|: ", str(s.get("reason") or "?"), maxsplit=1)[0]
            kinds.setdefault(kind, []).append(s)
        named = "; ".join(f"{len(group)} {kind}: " + ", ".join(f"{s.get('package')} (line {s.get('line')})"
                                                                for s in group[:limit])
                          + (f" and {len(group) - limit} more" if len(group) > limit else "")
                          for kind, group in sorted(kinds.items(), key=lambda kv: len(kv[1])))
        text += f", approximate: {len(skipped)} line(s) not installed: {named}"
    if requirements.get("pins") == "needed":
        text += f"; --pins needed: {len(requirements.get('left_out') or [])} pin(s) left out"
    return text


def corpus_label(rec) -> list[str]:
    """The label line of a record of a user's corpus (``--cases``) when records of several corpora are shown
    (:func:`distinguish`): ``cases: <folder names> (<digest>)``; none for the built-in corpus. Two records of one
    env that ran two corpora are two columns, told apart by it (a record's notes always name its corpus)."""
    digest = getattr(rec, "case_digest", None)
    if not digest or not getattr(rec, "show_corpus", False):
        return []
    names = ", ".join(Path(d).name for d in rec.case_dirs) or "?"
    return [f"cases: {names} ({digest[:8]})"]
