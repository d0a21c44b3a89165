"""One command-line grammar (picklematrix.cli): the nox sessions and the picklematrix commands parse their
arguments with the same parser; a typo is an error before anything is built; the noxfile only declares sessions."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from picklematrix import cli

from .conftest import FIXTURE_CASES, ROOT, run_cli


def test_every_option_is_declared_once():
    flags = [f for option in cli.OPTIONS for f in option.flags]
    assert len(flags) == len(set(flags)), sorted(f for f in flags if flags.count(f) > 1)
    for option in cli.OPTIONS:
        assert option.commands and set(option.commands) <= set(cli.COMMANDS), option.flags
        assert option.kwargs.get("help"), f"{option.flags[0]} has no help"


@pytest.mark.parametrize("command", sorted(set(cli.COMMANDS) - {"tests"}))
def test_a_session_and_its_command_take_the_same_options(command):
    """``./nox -s X -- ARGS`` and ``picklematrix X ARGS`` are one parser: the same option strings."""
    def options(parser):
        return sorted(s for action in parser._actions for s in action.option_strings)

    nox_parser = cli.build_parser(nox=True).commands[command]
    if not cli.COMMANDS[command].nox_only:
        assert options(cli.build_parser().commands[command]) == options(nox_parser)
    declared = {f for o in cli.OPTIONS if command in o.commands for f in o.flags if f.startswith("-")}
    assert set(options(nox_parser)) == declared | {"-h", "--help"}


@pytest.mark.parametrize("argv, message", [
    (["matrix", "--evn", "pydantic=2.10.6"], "unrecognized argument --evn: did you mean --env?"),
    (["review", "--chnage", "pydantic=2.9.2"], "did you mean --change?"),
    (["run", "--onyl", "x"], "did you mean --only?"),
    (["bisect", "--package", "pydantic"], "unrecognized argument --package"),
    (["matrix", "--en", "x"], "did you mean --env?"),  # no abbreviations: --en is no --env
])
def test_a_typo_is_an_error_naming_the_closest_option(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        cli.parse(argv[0], argv[1:])
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_the_environment_variables_are_fallbacks_not_a_second_spelling(monkeypatch):
    monkeypatch.setenv("PICKLEMATRIX_ONLY", "functions/*,pydantic/*")
    monkeypatch.setenv("PICKLEMATRIX_CASES", os.pathsep.join(["a", "b"]))
    args = cli.parse("matrix", [])
    assert args.only == ["functions/*", "pydantic/*"] and args.cases == ["a", "b"]
    args = cli.parse("matrix", ["--only", "misc/*", "--cases", "c"])
    assert args.only == ["misc/*"] and args.cases == ["c"]  # given: the variables are not read


@pytest.mark.parametrize("argv", [
    ["review", "--change", "pydantic=2.8.2..2.9.2", "--factor", "1.3", "--quiet", "--aa", "vm-rep2"],
    ["matrix", "--env", "pydantic=2.9.2", "--env", "x.txt", "--shard", "2/5", "--force"],
    ["run", "--samples", "3", "--samples", "script=1", "--method", "Client.compute", "--context", "all"],
    ["merge", "a", "b", "--results", "r"],
])
def test_parsed_arguments_go_back_to_the_same_arguments(argv):
    args = cli.parse(argv[0], argv[1:])
    assert cli.parse(argv[0], cli.to_argv(argv[0], args)) == args


@pytest.mark.parametrize("argv, sessions", [
    (["nox"], ["matrix"]),
    (["nox", "-s", "review", "--", "--from", "x"], ["review"]),
    (["nox", "-s", "tests", "lint"], ["tests", "lint"]),
    (["nox", "--session=bisect"], ["bisect"]),
    (["nox", "-s", "matrix(cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11)", "-k", "x"], ["matrix"]),
    (["nox", "-k", "py3.13", "--", "-s", "x"], ["matrix"]),  # after --, the session's own arguments
])
def test_the_sessions_a_nox_command_line_names(argv, sessions):
    assert cli.nox_selected(argv) == sessions


def test_version_is_the_package_metadata():
    proc = run_cli("--version", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"picklematrix {importlib.metadata.version('picklematrix')}"


def _nox(*args, cwd, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "nox", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clean clone of this checkout: what nox builds there (venvs, results) is seen."""
    where = tmp_path_factory.mktemp("grammar") / "checkout"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(where)], check=True)
    return where


def _built(checkout: Path) -> list[str]:
    nox_dir, results = checkout / ".nox", checkout / "results"
    return sorted([p.name for p in nox_dir.iterdir()] if nox_dir.exists() else []) + (
        ["results/"] if results.exists() else [])


@pytest.mark.parametrize("args, code, said", [
    (["-s", "matrix", "--", "--evn", "pydantic=2.10.6"], 2, "did you mean --env?"),
    (["-s", "review", "--", "--from", "x", "--too", "y"], 2, "did you mean --to?"),
    (["-s", "bisect", "--", "--package", "pydantic"], 2, "unrecognized argument --package"),
    (["-s", "matrix", "--", "--help"], 0, "usage: ./nox -s matrix --"),
    (["-s", "review", "--", "--help"], 0, "--change NAME=[A..]B"),
])
def test_nox_stops_on_a_bad_argument_or_help_before_building_anything(clone, args, code, said):
    proc = _nox(*args, cwd=clone)
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out[-3000:]
    assert said in out, out[-3000:]
    assert "Running session" not in out and _built(clone) == [], _built(clone)


def test_nox_lists_its_sessions_from_the_noxfile_and_matrix_toml_alone(clone, tmp_path):
    """No git, no uv, no network when nox loads the noxfile: with a PATH holding only python, it lists the
    profile's envs and skew pairs, and the envs --env names (a requirements file read, not resolved)."""
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python3").symlink_to(sys.executable)
    env = {"PATH": str(bare)}
    proc = _nox("--list", "--json", cwd=clone, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = {s["call_spec"].get("target") for s in json.loads(proc.stdout) if s["name"] == "matrix"}
    from picklematrix.envs.matrix import load_matrix

    profile = load_matrix(clone / "matrix.toml").profile("default")
    assert listed == ({e.env_id for e in profile.envs} | {p.session_id for p in profile.skew}
                      | ({f"aa-{profile.baseline}"} if profile.aa_pair else set()))
    freeze = ROOT / "tests" / "data" / "freezes" / "requirements-pyd2.9.2.txt"
    proc = _nox("--list", "--json", "--", "--env", str(freeze), "--change", "pydantic=2.8.2..2.9.2",
                "--env", "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11~cp3.0.0-dask2024.6.2-pyd1.10.21-py3.11",
                cwd=clone, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {s["call_spec"]["target"] for s in json.loads(proc.stdout) if s["name"] == "matrix"} == {
        freeze.name, "pydantic2.8.2", "pydantic2.9.2",
        "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11-on-cp3.0.0-dask2024.6.2-pyd1.10.21-py3.11"}
    assert _built(clone) == []


def _dry_run_envs(text: str) -> set[str]:
    """The env ids a ``--dry-run`` names: ``<target>: <env id> (...)``."""
    return set(re.findall(r"^(?:nox > )?[^\s:]+: (cp\S+) \(", text, flags=re.M))


@pytest.mark.slow
def test_the_same_arguments_give_the_same_envs_through_nox_and_picklematrix(clone):
    args = ["--dry-run", "--env", "python=3.11 dask=2024.6.2 pydantic=~=2.10", "--change", "cloudpickle=3.1.0",
            "--as-of", "2025-06-01", "--only", "functions/*", "--cases", str(FIXTURE_CASES)]
    proc = _nox("-s", "matrix", "--", *args, cwd=clone, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    through_nox = _dry_run_envs(proc.stdout + proc.stderr)
    proc = subprocess.run([sys.executable, "-m", "picklematrix", "matrix", *args], cwd=clone, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(clone / "src")})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    through_cli = _dry_run_envs(proc.stdout + proc.stderr)
    assert len(through_nox) == 2 and through_nox == through_cli, (through_nox, through_cli)
    # as of that day: pydantic 2.11.5 (2.11.6 came later), cloudpickle changed on the baseline, both with extra pins
    assert any("pyd2.11.5" in e for e in through_nox) and any(e.startswith("cp3.1.0-dask2024.6.2-pyd2.8.2")
                                                             for e in through_nox)
    # nothing built: only the venvs nox makes for its sessions, and no results
    assert not (clone / "results").exists()
    shutil.rmtree(clone / ".nox", ignore_errors=True)
