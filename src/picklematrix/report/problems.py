"""What the report says is wrong with results files: bad input as a whole (exit 2), and a Problem with one file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from picklematrix import sidecar


class BadInput(Exception):
    """The command cannot do anything useful with what it was given (exit 2)."""


@dataclass
class Problem:
    """Something wrong with one results file; the report is built without it (or without part of it)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_machine_json(mdir: Path, problems: list) -> None:
    mjson = mdir / "machine.json"
    try:
        mdata = json.loads(mjson.read_text())
        if mdata.get("machine") != mdir.name:
            problems.append(Problem(str(mjson), f"names machine {mdata.get('machine')!r}, but lives in "
                                                 f"{mdir.name}/: asv will not read this directory"))
    except FileNotFoundError:
        problems.append(Problem(str(mjson), "missing: asv skips this machine's results (its timings are "
                                            "left out; outcomes are still shown)"))
    except (OSError, ValueError) as e:
        problems.append(Problem(str(mjson), f"unreadable ({e}): asv skips this machine's results"))


def name_partial(path: Path, beside_complete: bool, problems: list) -> None:
    """A ``.partial`` sidecar: a recording that was stopped before it completed. Never shown as a record."""
    try:
        sc = sidecar.read(path)
        done = f"{len(sc.cells)} cell(s) done"
    except sidecar.SidecarError:
        done = "unreadable"
    if beside_complete:
        what = (f"an interrupted re-recording left this ({done}); the record beside it "
                f"({path.name.removesuffix(sidecar.PARTIAL)}) is the previous complete one and is what is shown")
    else:
        what = (f"an interrupted recording left this ({done}) and no complete record: the env is not shown; "
                "`nox -s matrix` records it again")
    problems.append(Problem(str(path), what))
