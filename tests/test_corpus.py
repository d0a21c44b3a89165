"""The corpus loader and validator, and expectation resolution (no cluster needed)."""

import textwrap

import pytest

from picklematrix.corpus import (
    BUILTIN_CASES,
    Case,
    expected_outcome,
    load_corpus,
)
from picklematrix.methods import METHODS
from picklematrix.outcomes import OUTCOMES

from .conftest import BROKEN_CASES, run_cli


def _problems_by_file(problems):
    out = {}
    for p in problems:
        out.setdefault(p.path.split("broken/")[-1], []).append(p)
    return out


def test_every_broken_case_is_reported_with_file_and_line():
    cases, problems = load_corpus([BROKEN_CASES])
    by_file = _problems_by_file(problems)
    assert by_file["syntax_error.py"][0].line == 2
    assert "syntax error" in by_file["syntax_error.py"][0].message
    assert "no CASE" in by_file["no_case.py"][0].message
    assert "not a literal" in by_file["not_literal.py"][0].message
    assert by_file["bad_outcome.py"][0].line == 4
    assert "'passed'" in by_file["bad_outcome.py"][0].message
    cond = by_file["bad_condition.py"]
    assert [p.line for p in cond] == [6, 7, 8]
    assert "unknown condition key 'numpy'" in cond[0].message
    assert "bad version specifier '<<2.9'" in cond[1].message
    assert "unknown method 'client.compute'" in cond[2].message
    assert "duplicate case id 'twice'" in by_file["dup2/twice.py"][0].message
    assert "folder 'dup'" in by_file["dup/wrong_family.py"][0].message
    # Only the broken cases are left out: the valid ones still load.
    assert sorted(c.case_id for c in cases) == ["bad_outcome", "syntax_error", "twice"]


def test_cases_check_lists_every_problem_and_exits_2():
    proc = run_cli("cases", "--check", "--cases", str(BROKEN_CASES))
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if "broken/" in line]
    assert len(lines) == 9, proc.stderr
    assert any("bad_condition.py:7:" in line for line in lines)


def test_missing_cases_dir_is_bad_input(tmp_path):
    proc = run_cli("cases", "--cases", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert "nope" in proc.stderr and "not a directory" in proc.stderr


def test_builtin_corpus_is_valid_and_covers_every_family():
    cases, problems = load_corpus([BUILTIN_CASES])
    assert not problems, "\n".join(map(str, problems))
    assert len(cases) >= 60
    families = {c.family for c in cases}
    for family in ("functions", "methods", "generators", "runtime", "classes", "pydantic", "misc", "containers"):
        assert family in families
    for c in cases:
        if c.family == "pydantic":
            assert "pydantic" in c.requires, c.path


def test_user_corpus_adds_to_builtin(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "my_case.py").write_text(textwrap.dedent('''
        CASE = {"family": "mine", "summary": "mine", "expect": "pass"}
        import dask
        result = dask.delayed(int)(1)
        expected = 1
    '''))
    cases, problems = load_corpus([BUILTIN_CASES, tmp_path])
    assert not problems
    assert "my_case" in {c.case_id for c in cases}


def _case(**kw):
    base = dict(case_id="c", family="f", path="c.py", source="", summary="s", expect="pass")
    base.update(kw)
    return Case(**base)


VERSIONS = {"python": "3.11.7", "cloudpickle": "3.1.0", "dask": "2024.6.2", "distributed": "2024.6.2", "pydantic": None}


@pytest.mark.parametrize(
    "rules, method, want",
    [
        ([], "dask.compute", "pass"),
        # the method's own default comes after the case's rules, before `expect`
        ([], "dask.compute(client=)", "ran-locally"),
        ([({"method": "dask.compute(client=)"}, "timeout")], "dask.compute(client=)", "timeout"),
        # first match wins
        ([({"cloudpickle": ">=3.1"}, "wrong-result"), ({"cloudpickle": ">=3"}, "task-error")], "dask.compute", "wrong-result"),
        ([({"cloudpickle": "<3.1"}, "wrong-result"), ({"cloudpickle": ">=3"}, "task-error")], "dask.compute", "task-error"),
        # all conditions of a rule must hold
        ([({"cloudpickle": ">=3", "method": "Client.compute"}, "task-error")], "dask.compute", "pass"),
        ([({"pydantic": "absent"}, "not-applicable")], "dask.compute", "not-applicable"),
        # a specifier never matches a package that is absent
        ([({"pydantic": "<2.9"}, "serialize-error")], "dask.compute", "pass"),
        ([({"python": ">=3.12"}, "serialize-error")], "dask.compute", "pass"),
        ([({"context": "kernel"}, "serialize-error")], "dask.compute", "pass"),
        ([({"context": "script", "dask": "==2024.6.2"}, "serialize-error")], "dask.compute", "serialize-error"),
    ],
)
def test_expectation_resolution(rules, method, want):
    case = _case(expect_when=rules)
    got = expected_outcome(case, method=method, context="script", versions=VERSIONS,
                           method_default=METHODS[method].default_expectation)
    assert got == want


def test_outcome_vocabulary_is_fixed():
    assert OUTCOMES == ("pass", "wrong-result", "serialize-error", "deserialize-error", "task-error",
                        "ran-locally", "timeout", "worker-died", "not-applicable", "harness-error")
