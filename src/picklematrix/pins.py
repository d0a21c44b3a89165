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
"""

from __future__ import annotations

import sys

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
# the checkout goes in without its dependencies (dask, ...): matrix.py needs tomli on Python 3.10
TOOLS = [ASV, ASV_RUNNER, JINJA2, PACKAGING, FILELOCK, 'tomli==2.5.0; python_version < "3.11"']
LINT = ["ruff==0.8.6"]

# The tests' own env: newest dask with pydantic 2.8.2, so that the namespace capture of notebook
# models (fixed in 2.9.0) is there to be measured.
TESTS_PYTHON = "3.11"
TESTS_MATRIX = ["dask==2026.8.0", "distributed==2026.8.0", "cloudpickle==3.1.3", "pydantic==2.8.2"]
# pytest runs the suite, nox the end-to-end matrices, websocket-client drives the browser test's chromium.
TESTS = list(dict.fromkeys([*TESTS_MATRIX, *ENV, *TOOLS, *NOX, "pytest==9.2.0", "websocket-client==1.9.0"]))

GROUPS = {"nox": NOX, "env": ENV, "tools": TOOLS, "tests": TESTS, "lint": LINT}


def main(argv: list[str]) -> int:
    """``pins.py GROUP``: the group's requirements, one a line (what ``pip install -r`` reads)."""
    if len(argv) != 1 or argv[0] not in GROUPS:
        print(f"usage: python3 pins.py {{{','.join(GROUPS)}}}", file=sys.stderr)
        return 2
    print("\n".join(GROUPS[argv[0]]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
