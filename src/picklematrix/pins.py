"""Every pin of the harness's own tools, in one place: what each kind of environment installs besides the matrix.

The matrix's axes (python, cloudpickle, dask/distributed, pydantic) live in matrix.toml; everything the
harness itself needs is pinned here, so that two machines recording the same commit run the same asv,
the same kernel machinery and the same nox:

- ``NOX``: nox's own environment, made by ``./nox`` (the noxfile runs in nox's interpreter and locks
  shared files with filelock);
- ``ENV``: installed in every matrix environment next to its axes (the kernel context, asv's runner);
- ``TOOLS``: the asv tools venv (asv, the report's templates, locking);
- ``TESTS``: the tests session's environment, ``LINT``: the lint session's.

Standard library only, no package imports: ``./nox`` runs this file with a bare ``python3``
(``python3 src/picklematrix/pins.py nox``) before anything is installed.

Locks: ``locks/<group>.txt`` holds a group's packages pinned with hashes (``uv pip compile --universal
--generate-hashes``, for every Python from 3.10 on). After changing a pin of a locked group, run
``python3 src/picklematrix/pins.py lock`` (it needs uv, e.g. ``.nox/_nox/bin/uv``, on PATH);
tests/faults/test_errors.py checks that the locks agree with the pins.

- ``nox`` (``./nox``) and ``tools`` (the asv tools venv): every package, dependencies included, installed
  with ``--require-hashes``.
- ``env``: the four packages of ``ENV`` only, hashed; uv checks the hashes a requirement file gives
  (``--verify-hashes``, its default) and installs the rest unhashed. Their dependencies are not locked: a
  matrix env resolves ``ENV`` together with its axes, which vary per env (one lock would fix the shared
  dependencies, tornado, psutil, ..., for every dask version), and the axes' own pins carry no hashes.
- ``TESTS`` and ``LINT``: pinned, not hashed: those sessions install through nox's ``session.install``
  (noxfile.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ASV = "asv==0.6.6"
ASV_RUNNER = "asv_runner==0.3.2"
# 4.1.0: the newest filelock that runs on Python 3.10, the oldest Python nox and this project support
FILELOCK = "filelock==4.1.0"
JINJA2 = "jinja2==3.1.6"
PACKAGING = "packaging==26.4"
# ipykernel/jupyter_client run the kernel context; both support Python 3.8-3.13, every python of the axes.
IPYKERNEL = "ipykernel==6.29.5"
JUPYTER_CLIENT = "jupyter_client==8.6.3"

NOX = ["nox[uv]==2026.10.20", "uv==0.13.9", FILELOCK]
ENV = [PACKAGING, ASV_RUNNER, IPYKERNEL, JUPYTER_CLIENT]
# the checkout goes in without its dependencies (dask, ...): envs/matrix.py needs tomli on Python 3.10
TOOLS = [ASV, ASV_RUNNER, JINJA2, PACKAGING, FILELOCK, 'tomli==2.5.0; python_version < "3.11"']
# zizmor audits the GitHub workflows (picklematrix.workflow_lint); the tests run it too (tests/test_workflow.py)
ZIZMOR = "zizmor==1.32.0"
LINT = ["ruff==0.8.6", ZIZMOR]

# The tests' own env: newest dask with pydantic 2.8.2, so that the namespace capture of notebook
# models (fixed in 2.9.0) is there to be measured.
TESTS_PYTHON = "3.11"
TESTS_MATRIX = ["dask==2026.8.0", "distributed==2026.8.0", "cloudpickle==3.1.3", "pydantic==2.8.2"]
# pytest runs the suite, nox the end-to-end matrices, websocket-client drives the browser test's chromium, zizmor
# audits the workflows.
TESTS = list(dict.fromkeys([*TESTS_MATRIX, *ENV, *TOOLS, *NOX, "pytest==9.2.0", "websocket-client==1.9.0", ZIZMOR]))

GROUPS = {"nox": NOX, "env": ENV, "tools": TOOLS, "tests": TESTS, "lint": LINT}
LOCKS_DIR = Path(__file__).resolve().parent / "locks"
LOCKED = ("nox", "tools", "env")  # the groups with a hashed lock, locks/<group>.txt
WITHOUT_DEPS = ("env",)  # locked without their dependencies (see above)
LOCK_PYTHON = "3.10"  # the oldest Python nox and the tools venv run on: --universal covers it and newer


def lock_path(group: str) -> Path:
    return LOCKS_DIR / f"{group}.txt"


def compile_lock(group: str, uv: str = "uv") -> None:
    """(Re)write ``locks/<group>.txt`` from the group's pins with ``uv pip compile``: every dependency, hashed."""
    proc = subprocess.run([uv, "pip", "compile", "--universal", "--python-version", LOCK_PYTHON,
                           *(["--no-deps"] if group in WITHOUT_DEPS else []),
                           "--generate-hashes", "--quiet", "--custom-compile-command",
                           "python3 src/picklematrix/pins.py lock", "-o", str(lock_path(group)), "-"],
                          input="\n".join(GROUPS[group]) + "\n", text=True)
    if proc.returncode != 0:
        raise SystemExit(f"pins.py: uv pip compile failed for the {group} group (above); nothing else changed")


def main(argv: list[str]) -> int:
    """``pins.py GROUP``: the group's requirements, one a line (what ``pip install -r`` reads).

    ``pins.py lock``: rewrite the hashed lock files of :data:`LOCKED` from the pins.
    """
    if argv == ["lock"]:
        for group in LOCKED:
            compile_lock(group)
            print(f"wrote {lock_path(group)}")
        return 0
    if len(argv) != 1 or argv[0] not in GROUPS:
        print(f"usage: python3 pins.py {{{','.join(GROUPS)}}} | lock", file=sys.stderr)
        return 2
    print("\n".join(GROUPS[argv[0]]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
