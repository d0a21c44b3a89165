"""A wheel of this checkout, installed with no checkout around, runs the built-in corpus.

What a newcomer does: build (or download) the wheel, ``pip install`` it (or ``uv tool`` /
``pipx``, whose venvs live under ``~/.local``), and run ``picklematrix``. Here the venv lives
under a hidden directory, the commands run from a directory outside the checkout, and PATH
does not lead back to it.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from picklematrix.envs.matrix import load_matrix
from picklematrix.run.corpus import load_corpus

from .conftest import ROOT

pytestmark = pytest.mark.slow

# Never part of a wheel's input: envs, results, caches, and the VCS.
NOT_COPIED = shutil.ignore_patterns(".git", ".nox", ".venv", "results", "html", ".asv", "dist", "build",
                                    "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", "*.egg-info")


def _uv(*args, cwd, timeout=600):
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never")
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(["uv", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"uv {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _interpreter() -> str:
    # a real interpreter, never one uv would download; the running one's base is as good
    pyenv = Path("/root/.pyenv/versions/3.11.7/bin/python")
    return str(pyenv) if pyenv.exists() else getattr(sys, "_base_executable", sys.executable)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin dir, a working directory outside the checkout, environment for running there)."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "checkout-copy"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    _uv("build", "--wheel", "-q", "-p", _interpreter(), "-o", str(tmp / "dist"), str(source), cwd=tmp)
    (wheel,) = (tmp / "dist").glob("picklematrix-*.whl")
    venv = tmp / ".local" / "share" / "pm-venv"
    _uv("venv", "-q", "-p", _interpreter(), str(venv), cwd=tmp)
    # the newest dask and cloudpickle on the matrix's axes, as the wheel's user would get them
    axes = load_matrix().axes
    newest = {axis: max(axes[axis], key=lambda v: tuple(map(int, v.split(".")))) for axis in ("dask", "cloudpickle")}
    _uv("pip", "install", "-q", "-p", str(venv / "bin" / "python"), str(wheel), f"dask=={newest['dask']}",
        f"distributed=={newest['dask']}", f"cloudpickle=={newest['cloudpickle']}", cwd=tmp)
    shutil.rmtree(source)  # nothing may be read from the copy once installed
    elsewhere = tmp / "somewhere-else"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    assert str(ROOT) not in env["PATH"]
    return venv / "bin", elsewhere, env


def _run(installed, *args, timeout=600):
    bindir, cwd, env = installed
    return subprocess.run([str(bindir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_installed_package_reads_its_own_corpus_and_matrix(installed):
    bindir = installed[0]
    proc = _run(installed, "python", "-c",
                "import picklematrix.run.corpus as c, picklematrix.envs.matrix as m; print(c.BUILTIN_CASES); print(m.MATRIX_FILE);"
                "print(len(m.load_matrix().profile('default').envs))")
    assert proc.returncode == 0, proc.stderr
    cases, matrix_file, n_envs = proc.stdout.split()
    site = bindir.parent / "lib"
    assert Path(cases).is_relative_to(site) and Path(cases).parts[-3:] == ("picklematrix", "builtin", "cases")
    assert Path(matrix_file).is_relative_to(site) and Path(matrix_file).name == "matrix.toml"
    assert int(n_envs) == len(load_matrix().profile("default").envs)


def test_picklematrix_cases_lists_the_whole_builtin_corpus(installed):
    proc = _run(installed, "picklematrix", "cases")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split(":")[0] for line in proc.stdout.splitlines()}
    builtin, _ = load_corpus()
    assert listed == {f"{c.family}/{c.case_id}" for c in builtin}
    check = _run(installed, "picklematrix", "cases", "--check")
    assert check.returncode == 0 and f"{len(builtin)} cases, no problems" in check.stdout, check.stderr


def test_picklematrix_run_computes_a_case_on_a_cluster(installed):
    out = installed[1] / "results.json"
    proc = _run(installed, "picklematrix", "run", "--only", "functions/lambda_square", "--context", "script",
                "--json", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["complete"] and not result["broken_cases"]
    cells = result["cells"]
    assert {c["case"] for c in cells} == {"lambda_square"} and {c["context"] for c in cells} == {"script"}
    assert not [c for c in cells if c["surprise"]]
    assert any(c["outcome"] == "pass" for c in cells)
    assert result["env"]["versions"]["dask"] == max(load_matrix().axes["dask"])


def test_an_empty_case_folder_is_an_error_there_too(installed):
    empty = installed[1] / "my-cases"
    empty.mkdir(exist_ok=True)
    proc = _run(installed, "picklematrix", "cases", "--cases", str(empty))
    assert proc.returncode == 2 and "no case files" in proc.stderr


def test_the_kernel_context_without_the_kernel_extra_names_the_extra(installed):
    # the wheel was installed without [kernel]: nothing may start before saying what to install
    proc = _run(installed, "picklematrix", "run", "--only", "functions/lambda_square", "--context", "kernel")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'pip install "picklematrix[kernel]"' in proc.stderr and "ipykernel" in proc.stderr
    assert "Traceback" not in proc.stderr and "cells" not in proc.stdout


def test_the_wheel_carries_its_license_version_and_urls(installed):
    """What PyPI shows and pip records: the version (one source, __init__.py), the license as an SPDX expression
    with its text in the wheel, and the project's URLs."""
    from picklematrix import __version__

    bindir, _, _ = installed
    (info,) = (bindir.parent / "lib").glob("python*/site-packages/picklematrix-*.dist-info")
    meta = (info / "METADATA").read_text()
    assert f"\nVersion: {__version__}\n" in meta
    assert "\nLicense-Expression: BSD-3-Clause\n" in meta and "\nLicense-File: LICENSE\n" in meta
    assert "\nProject-URL: " in meta
    assert (info / "licenses" / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
