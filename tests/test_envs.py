"""picklematrix.envs.venvs and .pins: building an env with real uv, its checks, the lock, the tests' browser."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from picklematrix import pins
from picklematrix.envs import venvs
from picklematrix.envs.ids import parse_env_id

from .conftest import ROOT


def test_every_harness_requirement_is_pinned_exactly():
    for group, requirements in pins.GROUPS.items():
        assert requirements, group
        for text in requirements:
            r = Requirement(text)
            assert len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==", f"{group}: {text}"


def test_pins_print_a_group_for_pip_with_a_bare_python():
    # ./nox reads the NOX group this way, before anything is installed: -I keeps the checkout off sys.path
    proc = subprocess.run([sys.executable, "-I", str(ROOT / "src" / "picklematrix" / "pins.py"), "nox"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines() == pins.NOX
    bad = subprocess.run([sys.executable, "-I", str(ROOT / "src" / "picklematrix" / "pins.py"), "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "nox" in bad.stderr


def test_the_lock_makes_a_second_process_wait(tmp_path):
    path = tmp_path / "locks" / "shared.lock"
    holder = ("import sys, time; sys.path.insert(0, sys.argv[2]); from picklematrix.envs.venvs import lock\n"
              "with lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(1.5)\n")
    proc = subprocess.Popen([sys.executable, "-c", holder, str(path), str(ROOT / "src")], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    started = time.monotonic()
    with venvs.lock(path):
        waited = time.monotonic() - started
    proc.wait(10)
    assert waited > 0.5, f"the lock was taken while another process held it (waited {waited:.2f} s)"


@pytest.fixture(scope="module")
def small_venv(tmp_path_factory):
    """A real uv venv of this Python with packaging only: cheap, and nothing of the matrix in it."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([venvs.uv(), "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    subprocess.run([venvs.uv(), "pip", "install", "-q", "-p", venvs.venv_python(venv), pins.PACKAGING], check=True)
    return venvs.venv_python(venv)


def test_a_venv_reports_its_versions_and_what_differs_from_the_pins(small_venv):
    found = venvs.installed_versions(small_venv)
    assert found["python"] == ".".join(map(str, sys.version_info[:3]))
    assert found["versions"] == {"cloudpickle": None, "dask": None, "distributed": None, "pydantic": None}
    env = parse_env_id(f"cp3.0.0-dask2024.6.2-pyd2.8.2-py{sys.version_info[0]}.{sys.version_info[1]}")
    wrong = venvs.pin_mismatches(env, found)
    assert wrong == ["cloudpickle None (pinned 3.0.0)", "dask None (pinned 2024.6.2)",
                     "distributed None (pinned 2024.6.2)", "pydantic None (pinned 2.8.2)"]
    other_python = parse_env_id("cp3.0.0-dask2024.6.2-pyd2.8.2-py2.7")
    assert "python" in venvs.pin_mismatches(other_python, found)[-1]


def test_byte_compiling_a_venv(small_venv):
    assert venvs.compile_packages(small_venv) is None
    site = subprocess.run([small_venv, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert list((Path(site) / "packaging" / "__pycache__").glob("version.*.pyc"))


def test_an_unresolvable_install_is_an_env_error_naming_the_package(small_venv, tmp_path):
    with pytest.raises(venvs.EnvError) as err:
        venvs.install(small_venv, ["dask==2026.8.0", "cloudpickle==2.2.1"], ROOT)
    assert err.value.stage == "install" and "cloudpickle" in str(err.value)
    assert not venvs.installed_editable(small_venv, ROOT)  # nothing was stamped


def test_an_env_whose_interpreter_is_gone_cannot_report_versions(tmp_path):
    with pytest.raises((venvs.EnvError, OSError)):
        venvs.installed_versions(str(tmp_path / "bin" / "python"))


def test_chromium_is_found_where_pointed_at(monkeypatch, tmp_path):
    browser = tmp_path / "my-chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    monkeypatch.setenv(venvs.CHROMIUM_VAR, str(browser))
    assert venvs.find_chromium() == str(browser)
    monkeypatch.setenv(venvs.CHROMIUM_VAR, str(tmp_path / "missing"))
    assert venvs.find_chromium() is None
    message = venvs.chromium_missing()
    assert str(tmp_path / "missing") in message and "apt-get install" in message
    assert venvs.INSTALL_BROWSER_VAR in message


def test_without_chromium_on_path_the_message_names_the_command(monkeypatch, tmp_path):
    monkeypatch.delenv(venvs.CHROMIUM_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no browser on it
    assert venvs.find_chromium() is None
    message = venvs.chromium_missing()
    assert "chromium, chromium-browser, google-chrome" in message
    assert " ".join(venvs.CHROMIUM_INSTALL) in message


def test_installing_chromium_is_only_offered_to_root_with_apt(monkeypatch, tmp_path):
    commands = venvs.install_chromium_commands()
    if os.geteuid() == 0 and venvs.shutil.which("apt-get"):
        assert commands[-1] == venvs.CHROMIUM_INSTALL
    else:
        assert commands is None
    monkeypatch.setenv("PATH", str(tmp_path))
    assert venvs.install_chromium_commands() is None


@pytest.mark.slow
def test_a_warm_env_is_left_alone_and_one_changed_by_hand_is_installed_again(tmp_path):
    """The second prepare() of an env nothing changed returns the first one's finding without touching the venv
    (its record of that finding is not even rewritten); one whose byte-compiled files were removed is compiled
    again, and one changed by hand is installed and verified anew."""
    import json

    env = parse_env_id(f"cp3.0.0-dask2024.6.2-pyd2.8.2-py{sys.version_info[0]}.{sys.version_info[1]}")
    venv = tmp_path / "env"
    subprocess.run([venvs.uv(), "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    python = venvs.venv_python(venv)
    found = venvs.prepare(env, python, ROOT)
    record = venv / venvs.PREPARED_FILE
    assert json.loads(record.read_text())["found"] == found
    written = record.stat().st_mtime_ns
    assert venvs.prepare(env, python, ROOT) == found
    assert record.stat().st_mtime_ns == written  # nothing installed, compiled or probed
    pycache = next(venv.glob("lib/python*/site-packages/distributed/__pycache__"))
    shutil.rmtree(pycache)  # byte-compiled files removed: compiled again
    assert venvs.prepare(env, python, ROOT) == found
    assert list(pycache.glob("client.*.pyc"))
    written = record.stat().st_mtime_ns
    subprocess.run([venvs.uv(), "pip", "install", "-q", "-p", python, "cloudpickle==3.1.0"], check=True)
    again = venvs.prepare(env, python, ROOT)
    assert again["versions"]["cloudpickle"] == "3.0.0" and again == found  # the pin, installed again
    assert record.stat().st_mtime_ns != written
