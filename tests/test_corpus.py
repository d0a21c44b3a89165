"""The corpus loader and validator, and expectation resolution (no cluster needed)."""

import shutil
import textwrap

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from picklematrix import pins, requirements_check
from picklematrix.envs.ids import parse_env_id
from picklematrix.envs.matrix import MATRIX_FILE, MatrixError, load_matrix
from picklematrix.locations import builtin_path
from picklematrix.outcomes import OUTCOMES
from picklematrix.run.corpus import (
    BUILTIN_CASES,
    Case,
    CorpusError,
    case_files,
    condition_versions,
    expected_outcome,
    load_corpus,
)
from picklematrix.run.methods import METHODS
from picklematrix.versions import version_condition, version_matches

from .conftest import BROKEN_CASES, ROOT, run_cli

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


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
                        "ran-locally", "timeout", "worker-died", "not-applicable", "harness-error", "client-died")


# --------------------------------------------------------------------------- where the corpus is, and an empty one

def test_corpus_under_a_hidden_directory_loads(tmp_path):
    # pipx, `uv tool` and caches live under ~/.local and ~/.cache: only dot-names inside the corpus are skipped
    root = tmp_path / ".cache" / "pm" / "cases"
    shutil.copytree(BUILTIN_CASES, root)
    (root / "functions" / ".ipynb_checkpoints").mkdir()
    (root / "functions" / ".ipynb_checkpoints" / "lambda_square-checkpoint.py").write_text("CASE = {}\n")
    (root / "functions" / "__pycache__").mkdir(exist_ok=True)
    (root / "functions" / "__pycache__" / "stray.py").write_text("CASE = {}\n")
    (root / "functions" / "_helpers.py").write_text("x = 1\n")
    (root / ".hidden.py").write_text("CASE = {}\n")
    cases, problems = load_corpus([root])
    builtin, _ = load_corpus([BUILTIN_CASES])
    assert not problems, "\n".join(map(str, problems))
    assert sorted(c.case_id for c in cases) == sorted(c.case_id for c in builtin)
    assert len(case_files(root)) == len(builtin)


@pytest.mark.parametrize("layout", ["empty", "only_skipped"])
def test_a_folder_without_case_files_is_an_error(tmp_path, layout):
    d = tmp_path / "mine"
    d.mkdir()
    if layout == "only_skipped":
        (d / ".ipynb_checkpoints").mkdir()
        (d / ".ipynb_checkpoints" / "a.py").write_text("CASE = {}\n")
        (d / "_helper.py").write_text("")
        (d / "notes.txt").write_text("")
    with pytest.raises(CorpusError) as err:
        load_corpus([d])
    assert str(d) in str(err.value) and "no case files" in str(err.value)
    assert "<family>/<case_id>.py" in str(err.value) and "CASE = {...}" in str(err.value)
    # one empty folder among good ones is still a mistake worth stopping for
    with pytest.raises(CorpusError, match="no case files"):
        load_corpus([BUILTIN_CASES, d])


@pytest.mark.parametrize("command", [["cases"], ["cases", "--check"], ["run", "--no-progress"]])
def test_cli_exits_2_on_an_empty_corpus(tmp_path, command):
    proc = run_cli(*command, "--cases", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no case files" in proc.stderr and str(tmp_path) in proc.stderr
    assert "no problems" not in proc.stdout


def test_the_builtin_corpus_and_matrix_of_a_checkout_are_read_in_place():
    # an editable install: edits to cases/ and matrix.toml show without reinstalling
    assert builtin_path("cases") == BUILTIN_CASES == ROOT / "cases"
    assert builtin_path("matrix.toml") == MATRIX_FILE == ROOT / "matrix.toml"
    assert builtin_path("no-such-thing") is None


# --------------------------------------------------------------------------- version conditions

@pytest.mark.parametrize(
    "condition, matching, not_matching",
    [
        # a bare version is its release series
        ("2.9", ["2.9", "2.9.0", "2.9.2", "2.9.0rc1"], ["2.8.2", "2.10.0", "2.90"]),
        ("3", ["3.0.0", "3.1.3"], ["2.2.1", "4.0"]),
        ("3.11", ["3.11.7", "3.11"], ["3.1", "3.12.1"]),
        ("2024.6.2", ["2024.6.2"], ["2024.6.20", "2026.8.0"]),
        ("2.9.*", ["2.9.2"], ["2.8.2"]),
        # a bare version with a pre/post/dev/local part is that version exactly
        ("2.9.0rc1", ["2.9.0rc1"], ["2.9.0", "2.9.0rc2"]),
        (">=2.9", ["2.9.0", "2.14.4"], ["2.8.2"]),
        ("<2.9", ["2.8.2", "1.10.21"], ["2.9.0", "2.9.2"]),
        ("~=2.9", ["2.9.2", "2.14.4"], ["2.8.2", "3.0"]),
        ("!=2.9.1", ["2.9.2", "2.8.2"], ["2.9.1"]),
        ("==2.9.2", ["2.9.2"], ["2.9.1"]),
        (">=2.5,<2.9", ["2.5.0", "2.8.2"], ["2.4.0", "2.9.0"]),
        (" >= 2.5 , < 2.9 ", ["2.8.2"], ["2.9.2"]),
        ("2.9, !=2.9.1", ["2.9.0", "2.9.2"], ["2.9.1", "2.10.0"]),
        ("absent", [None], ["2.9.2"]),
    ],
)
def test_version_conditions_as_people_write_them(condition, matching, not_matching):
    for v in matching:
        assert version_matches(condition, v), (condition, v)
    for v in not_matching:
        assert not version_matches(condition, v), (condition, v)
    if condition != "absent":
        assert not version_matches(condition, None)  # a specifier never matches a package that is absent
        assert isinstance(version_condition(condition), SpecifierSet)


@pytest.mark.parametrize(
    "condition, says",
    [
        ("=2.9", "write '==2.9'"),
        ("<<2.9", "'<<2.9' is not a version specifier"),
        (">=2.5,", "empty clause"),
        ("", "empty clause"),
        ("2.x", "'2.x' is not a version"),
        ("~=2", "'~=2' is not a version specifier"),
        (3.1, "float, not a string: quote it"),
    ],
)
def test_bad_version_conditions_say_what_to_write(condition, says):
    with pytest.raises(InvalidSpecifier) as err:
        version_condition(condition)
    assert says in str(err.value)
    assert ">=2.5,<2.9" in str(err.value) or "=2.9" in str(err.value)


def test_case_files_accept_every_condition_form(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "conditions.py").write_text(textwrap.dedent('''
        CASE = {"family": "mine", "summary": "every form", "expect": "pass", "expect_when": [
            [{"pydantic": "2.9"}, "task-error"],
            [{"pydantic": "~=2.9"}, "task-error"],
            [{"pydantic": ">=2.5,<2.9", "python": "3.11"}, "task-error"],
            [{"cloudpickle": "!=3.1.0", "dask": "2024.6.2"}, "task-error"],
            [{"pydantic": "absent"}, "not-applicable"],
        ]}
        import dask
        result = dask.delayed(int)(1)
        expected = 1
    '''))
    (case,), problems = load_corpus([tmp_path])
    assert not problems

    def want(**versions):
        return expected_outcome(case, method="Client.compute", context="script", versions=dict(VERSIONS, **versions))

    assert want(pydantic="2.9.2") == "task-error"  # 2.9 is the 2.9 series, not 2.9.0 alone
    assert want(pydantic="2.8.2", python="3.11.7") == "task-error"
    assert want(pydantic="2.8.2", python="3.12.1") == "pass"
    assert want(pydantic=None) == "not-applicable"


def test_cluster_conditions_read_the_clusters_versions_and_the_clients_on_its_own_cluster(tmp_path):
    """``cluster_*`` conditions read what the cluster reported (a skew pair's cluster env, a --scheduler cluster);
    on a cluster of the client's own env they read the client's versions, as the plain conditions do."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "skewed.py").write_text(textwrap.dedent('''
        CASE = {"family": "mine", "summary": "client and cluster sides", "expect": "pass", "expect_when": [
            [{"pydantic": ">=2", "cluster_pydantic": "<2"}, "deserialize-error"],
            [{"python": "3.12", "cluster_python": "3.11", "method": "Client.compute"}, "worker-died"],
            [{"cluster_pydantic": "absent"}, "not-applicable"],
            [{"cluster_distributed": "<2025"}, "task-error"],
        ]}
        import dask
        result = dask.delayed(int)(1)
        expected = 1
    '''))
    (case,), problems = load_corpus([tmp_path])
    assert not problems, problems
    client = dict(VERSIONS, pydantic="2.8.2", dask="2026.8.0", distributed="2026.8.0")

    def want(cluster=None, method="Client.compute", **changes):
        return expected_outcome(case, method=method, context="script",
                                versions=condition_versions(dict(client, **changes), cluster))

    assert want() == "pass"  # the cluster is the client's env: pydantic 2.8.2 on both sides
    assert want(dict(client, pydantic="1.10.21")) == "deserialize-error"
    assert want(dict(client, pydantic="1.10.21"), pydantic="1.10.21") == "pass"  # v1 on both sides
    assert want(dict(client, python="3.11.7"), python="3.12.1") == "worker-died"
    assert want(dict(client, python="3.11.7"), python="3.12.1", method="dask.compute") == "pass"
    assert want(dict(client, python="3.12.1"), python="3.11.7") == "pass"  # the skew the other way round
    assert want(dict(client, pydantic=None)) == "not-applicable"
    assert want(dict(client, distributed="2024.6.2")) == "task-error"
    # a plain {name: version} of the client (no cluster named) counts for both sides
    assert expected_outcome(case, method="Client.compute", context="script",
                            versions=dict(client, distributed="2024.6.2")) == "task-error"


def test_a_bad_cluster_condition_is_a_problem_with_its_line(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "bad.py").write_text(textwrap.dedent('''
        CASE = {"family": "mine", "summary": "bad cluster conditions", "expect": "pass", "expect_when": [
            [{"cluster_pydantic": "<<2"}, "task-error"],
            [{"cluster_numpy": "2"}, "task-error"],
        ]}
        import dask
        result = dask.delayed(int)(1)
        expected = 1
    '''))
    _, problems = load_corpus([tmp_path])
    assert [p.line for p in problems] == [3, 4], problems
    assert "bad version specifier '<<2' for 'cluster_pydantic'" in problems[0].message
    assert "unknown condition key 'cluster_numpy'" in problems[1].message and "cluster_pydantic" in problems[1].message


def test_matrix_exclusions_use_the_same_conditions(tmp_path):
    axes = textwrap.dedent('''
        [axes]
        python = ["3.10", "3.11"]
        cloudpickle = ["3.0.0"]
        dask = ["2024.6.2"]
        pydantic = ["2.8.2", "absent"]
        [[exclude]]
        python = "3.10"
        pydantic = "2.8"
        reason = "a bare version is its series, as in case files"
        [[exclude]]
        python = ">=3.11"
        pydantic = "absent"
        reason = "absent matches the env without pydantic"
        [profiles.default]
        baseline = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"
        product = true
    ''')
    (tmp_path / "matrix.toml").write_text(axes)
    m = load_matrix(tmp_path / "matrix.toml")
    assert {e.env_id for e in m.profile("default").envs} == {
        "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11", "cp3.0.0-dask2024.6.2-pydabsent-py3.10"}
    assert "pydantic" not in parse_env_id("cp3.0.0-dask2024.6.2-pydabsent-py3.10").pins()
    # TOML reads python = 3.10 as the number 3.1: refused, never misread
    (tmp_path / "matrix.toml").write_text(axes.replace('python = "3.10"', "python = 3.10"))
    with pytest.raises(MatrixError, match=r"\[\[exclude\]\] #1: python = 3.1: .*quote it"):
        load_matrix(tmp_path / "matrix.toml")


# --------------------------------------------------------------------------- declared requirements

def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_declared_lower_bounds_admit_every_matrix_env():
    # every matrix env installs this checkout next to its pins: a bound above a pin is unresolvable
    deps = {Requirement(r).name: Requirement(r) for r in _pyproject()["project"]["dependencies"]}
    for name in ("dask", "distributed", "cloudpickle", "packaging"):
        assert name in deps, f"pyproject.toml does not declare {name}"
    matrix = load_matrix()
    for env in matrix.profile("full").envs:
        for name, version in env.pins().items():
            if name in deps:
                assert deps[name].specifier.contains(version), f"{env.env_id}: {deps[name]} excludes {version}"
    oldest = {a: min(matrix.axes[a], key=Version) for a in ("cloudpickle", "dask")}
    assert str(deps["dask"].specifier) == str(deps["distributed"].specifier) == f">={oldest['dask']}"
    assert str(deps["cloudpickle"].specifier) == f">={oldest['cloudpickle']}"
    assert "tomli" in deps and deps["tomli"].marker.evaluate({"python_version": "3.10"})
    assert not deps["tomli"].marker.evaluate({"python_version": "3.11"})
    # what matrix envs and the asv tools venv get besides the axes satisfies the extras they stand in for
    extras = _pyproject()["project"]["optional-dependencies"]
    for extra, pinned in (("kernel", pins.ENV), ("report", pins.TOOLS)):
        by_name = {canonicalize_name(Requirement(r).name): Requirement(r) for r in pinned}
        for r in map(Requirement, extras[extra]):
            pin = by_name.get(canonicalize_name(r.name))
            if pin is not None:
                assert r.specifier.contains(str(pin.specifier).removeprefix("==")), f"{pin} is not in [{extra}]'s {r}"



def test_requirements_check_knows_the_extras_pyproject_declares():
    extras = _pyproject()["project"]["optional-dependencies"]
    for extra, names in requirements_check.EXTRAS.items():
        declared = {canonicalize_name(Requirement(r).name) for r in extras[extra]}
        assert declared == {canonicalize_name(n) for n in names}, extra


def test_a_missing_extra_names_what_to_install(monkeypatch):
    requirements_check.require("kernel", "the kernel context")  # the test env has them
    monkeypatch.setitem(requirements_check.EXTRAS, "kernel", ("ipykernel", "no-such-distribution-pm"))
    assert requirements_check.missing("kernel") == ["no-such-distribution-pm"]
    with pytest.raises(requirements_check.MissingExtra) as err:
        requirements_check.require("kernel", "the kernel context")
    assert "the kernel context needs no-such-distribution-pm" in str(err.value)
    assert 'pip install "picklematrix[kernel]"' in str(err.value)


def test_the_console_command_is_the_cli():
    assert _pyproject()["project"]["scripts"] == {"picklematrix": "picklematrix.cli:main"}


# --------------------------------------------------------------------------- values that come back wrong

def _cell_namespace(case_id):
    """The namespace a case's cell defines (its ``result`` is a lazy dask graph: nothing is computed)."""
    (case,) = [c for c in load_corpus([BUILTIN_CASES])[0] if c.case_id == case_id]
    namespace = {"__name__": "__main__"}
    exec(compile(case.source, case.path, "exec"), namespace)
    return namespace


def test_a_round_trip_value_that_lost_or_changed_a_field_is_wrong_and_never_breaks_the_check():
    """The round-trip cases check what comes back field by field: a model that comes back without a field (as
    pydantic-core#1616's empty models did), with another value, or not at all is a wrong value (check() returns
    False: wrong-result), never a pass, and never an exception that would blame the case (harness-error)."""
    ns = _cell_namespace("model_instance_round_trip")
    sent = ns["sent"]
    good = (sent, sent.model_copy(update={"quantity": 6, "price": 19.0, "tags": ["fragile", "repriced"],
                                          "note": "by worker"}), dict(ns["WANT_SEEN"]))
    assert ns["check"](good) is True
    empty = ns["Order"].model_construct()  # an instance with no field set
    changed = sent.model_copy(update={"price": 9.0})
    for wrong in [(empty, good[1], good[2]), (good[0], changed, good[2]), (good[0], good[1], {}), None, (sent,)]:
        assert ns["check"](wrong) is False, wrong

    ns = _cell_namespace("dataclass_instance_round_trip")
    import dataclasses

    sent = ns["sent"]
    new = dataclasses.replace(sent, label="P-1-x", items=["book", "box"], insured=True,
                              weight=dataclasses.replace(sent.weight, amount=3.5))
    seen = {"label": "P-1", "items": ["book"], "insured": False, "amount": 2.5, "unit": "kg",
            "fields": ["label", "weight", "items", "insured"]}
    assert ns["check"]((sent, new, seen)) is True
    hollow = object.__new__(ns["Parcel"])  # no field set at all
    other_unit = dataclasses.replace(new, weight=ns["Weight"](3.5, ns["Unit"].LB))
    for wrong in [(hollow, new, seen), (sent, other_unit, seen), (sent, sent, seen), (sent, new, {})]:
        assert ns["check"](wrong) is False, wrong

    # a class that arrived without its validators builds instances whose fields were never normalised
    ns = _cell_namespace("validated_model_round_trip")
    contact = ns["Contact"]
    sent = contact(email="  Ada@Example.ORG ")
    fresh = contact(email=" Bob@Example.COM", country="de")
    assert ns["check"]((sent, fresh, {"email": "bob@example.com", "country": "DE"})) is True
    unvalidated = contact.model_construct(email=" Bob@Example.COM", country="de")
    assert ns["check"]((sent, unvalidated, {"email": "bob@example.com", "country": "DE"})) is False
    assert ns["check"]((sent, fresh, {"email": " Bob@Example.COM", "country": "de"})) is False
    assert ns["check"]((contact.model_construct(), fresh, {"email": "bob@example.com", "country": "DE"})) is False
