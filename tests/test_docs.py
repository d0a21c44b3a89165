"""The docs say what the code does: their commands parse, their links resolve, nothing points outside the repo."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from picklematrix import cli

from .conftest import ROOT, run_cli

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# usage lines name their values; each stands for a value the option accepts
PLACEHOLDERS = {"DIR": str(ROOT / "cases"), "ENV": "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11", "REV": "HEAD",
                "GLOB": "pydantic/*", "N": "3", "PATH": "out.json", "ADDRESS": "tcp://127.0.0.1:8786",
                "NAME": "Client.compute", "MACHINE": "vm", "FACTOR": "1.1", "NAME=A..B": "pydantic=2.8.2..2.9.2",
                "N|CONTEXT=N": "3"}


def shell_lines():
    """(doc, line) for every command in a ```bash / ```sh block, comments dropped."""
    for doc in DOCS:
        language = None
        for line in doc.read_text().splitlines():
            fence = FENCE.match(line)
            if fence:
                language = None if language is not None else fence.group(1)
                continue
            if language in ("bash", "sh", "shell", "console"):
                command = line.split(" #")[0].strip()
                if command and not command.startswith("#"):
                    yield doc.relative_to(ROOT), command


def _words(command: str) -> list[str]:
    """The command's words, a usage line's optional parts ``[--x X]`` taken, its ``a|b`` choices the first."""
    words = [PLACEHOLDERS.get(w, w) for w in shlex.split(command.replace("[", " ").replace("]", " "))]
    words = [w if w in PLACEHOLDERS.values() else w.split("|")[0] for w in words if w not in ("...", "]...")]
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefixes
        words.pop(0)
    return words


def test_the_readme_is_one_screen_of_commands_not_a_manual():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def test_every_documented_command_parses(nox_sessions):
    checked = 0
    for doc, command in shell_lines():
        words = _words(command)
        where = f"{doc}: {command}"
        if words[:1] == ["./nox"]:
            args = words[1:]
            if "-s" in args:
                session = args[args.index("-s") + 1]
                assert nox_sessions(session), f"{where}: no nox session {session!r}"
                posargs = args[args.index("--") + 1:] if "--" in args else []
                try:  # the session's arguments: picklematrix's grammar, as the session parses them
                    cli.parse(session.split("(")[0], posargs)
                except SystemExit as e:
                    pytest.fail(f"{where}: does not parse (exit {e.code})")
            checked += 1
        elif words[:1] == ["picklematrix"]:
            try:
                cli.build_parser().parse_args(words[1:])
            except SystemExit as e:
                pytest.fail(f"{where}: does not parse (exit {e.code})")
            checked += 1
    assert checked >= 5, "the docs lost their commands, or this test stopped finding them"


def test_the_documented_case_check_runs():
    # what README and docs/cases.md tell a case author to run first
    proc = run_cli("cases", "--cases", str(ROOT / "cases"), "--check", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no problems" in proc.stdout


def test_every_relative_link_resolves():
    for doc in DOCS:
        for target in LINK.findall(doc.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{doc.relative_to(ROOT)} links to {target}, which does not exist"
            assert ROOT in path.parents or path == ROOT, f"{doc.relative_to(ROOT)} links outside the repo: {target}"


def test_nothing_in_the_repository_points_outside_it():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.split():
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".toml", ".json", ".txt", ".j2", "") or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        # spelled in two pieces, so that this file does not find itself
        assert "../" + "shared" not in text and "CONTEXT" + ".md" not in text, f"{name} refers to files outside the repo"
