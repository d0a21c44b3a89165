"""The report over envs that differ only outside their axes (their labels tell them apart) and its ``--env SPEC``
filter (picklematrix.report.envmatch), over records written as the harness writes them."""

import json

import pytest

from picklematrix.cli import main
from picklematrix.envs.ids import asv_env_name, extra_digest
from picklematrix.report.compare import build_review
from picklematrix.report.envmatch import select_envs
from picklematrix.report.problems import BadInput
from picklematrix.report.results import load_results
from picklematrix.report.table import build_table
from picklematrix.sidecar import SidecarWriter

from .conftest import ROOT

COMMIT = "89abcdef" * 5
FREEZES = ROOT / "tests" / "data" / "freezes"
BASE = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"


def _record(results, pydantic, outcome, extra=None):
    versions = {"cloudpickle": "3.0.0", "dask": "2024.6.2", "distributed": "2024.6.2", "pydantic": pydantic}
    digest = extra_digest(extra or {})
    env_id = f"cp3.0.0-dask2024.6.2-pyd{pydantic}-py3.11" + (f"+{digest}" if digest else "")
    path = results / "box" / f"{COMMIT[:8]}-{asv_env_name('3.11.7', {**versions, 'extra': digest})}.outcomes"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = SidecarWriter(path, {"env": {"python": "3.11.7", "versions": versions}, "env_id": env_id,
                                  "commit": COMMIT, "machine": "box", "case_dirs": [], "broken_cases": [],
                                  "extra": extra or {}, "case_digest": None})
    writer.add({"case": "c", "family": "f", "method": "Client.compute", "context": "script", "outcome": outcome,
                "expected": "pass", "surprise": outcome != "pass", "root_cause": None, "seconds": 0.01,
                "samples": [0.01], "graph_bytes": 1, "detail": None})
    writer.finish()
    return env_id


def _freeze_pins(name):
    lines = (FREEZES / name).read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))


@pytest.fixture
def results(tmp_path):
    """The baseline, the same axes from two freezes that differ in tornado only, and pydantic 2.9.2."""
    results = tmp_path / "results"
    ids = {"base": _record(results, "2.8.2", "serialize-error"),
           "pyd292": _record(results, "2.9.2", "pass")}
    for key, name in (("freeze", "requirements-pyd2.8.2.txt"), ("tornado", "requirements-pyd2.8.2-tornado6.4.2.txt")):
        pins = {n: v for n, v in _freeze_pins(name).items()
                if n not in ("cloudpickle", "dask", "distributed", "pydantic", "packaging")}
        ids[key] = _record(results, "2.8.2", "serialize-error", extra=pins)
    return results, ids


def test_envs_of_the_same_axes_are_told_apart_by_their_differing_extra_pins(results):
    results, ids = results
    assert len(set(ids.values())) == 4 and ids["base"] == BASE
    rs = load_results(results)
    by_id = {r.env_id: r for r in rs.current()}
    labels = {k: by_id[ids[k]].version_label() for k in ids}
    assert "tornado 6.6.1" in labels["freeze"] and "tornado 6.4.2" in labels["tornado"]
    assert labels["freeze"][-1] == "+20 other extra pins"  # the rest (21 extra pins), the same in both
    assert labels["base"][-1] == "pydantic 2.8.2" and labels["pyd292"][-1] == "pydantic 2.9.2"  # the axes alone
    review = build_review(rs, by_id[ids["freeze"]], by_id[ids["tornado"]])
    assert review["from"]["label"] == ids["freeze"] != review["to"]["label"] == ids["tornado"]
    assert "tornado 6.6.1" in review["from"]["version_label"] and "tornado 6.4.2" in review["to"]["version_label"]


@pytest.mark.parametrize("spec, expected", [
    ("pydantic=2.9.2 python=3.11", {"pyd292"}),
    ("pydantic~=2.8.0", {"base", "freeze", "tornado"}),
    ("tornado=6.4.2", {"tornado"}),  # a package besides the axes: among the extra pins
    ("python=3.11", {"base", "pyd292", "freeze", "tornado"}),  # unnamed axes match anything
    (BASE, {"base"}),
    (str(FREEZES / "requirements-pyd2.8.2-tornado6.4.2.txt"), {"tornado"}),
])
def test_env_specs_pick_recorded_envs_by_installed_versions(results, spec, expected):
    results, ids = results
    rs = select_envs(load_results(results), [spec])
    assert {r.env_id for r in rs.current()} == {ids[k] for k in expected}
    table = build_table(rs)
    assert {e["env_id"] for e in table["environments"]} == {ids[k] for k in expected}


def test_report_env_filter_restricts_the_table_and_an_unmatched_spec_lists_what_is_recorded(results, tmp_path,
                                                                                            capsys):
    results, ids = results
    code = main(["report", "--results", str(results), "--html", str(tmp_path / "html"), "--env", "pydantic=2.9.2",
                       "--env", ids["tornado"]])
    table = json.loads((results / "table.json").read_text())
    assert {e["env_id"] for e in table["environments"]} == {ids["pyd292"], ids["tornado"]}, capsys.readouterr()
    assert code in (0, 1)  # 1: asv publish has no asv results here; the table is built all the same
    before = (results / "table.json").read_text()
    assert main(["report", "--results", str(results), "--html", str(tmp_path / "html"), "--env",
                       "pydantic=2.10.6"]) == 2
    err = capsys.readouterr().err
    assert "--env 'pydantic=2.10.6' matches no env recorded" in err
    assert all(env_id in err for env_id in ids.values()) and "tornado 6.4.2" in err
    assert (results / "table.json").read_text() == before  # nothing written
    with pytest.raises(BadInput, match="latest cannot pick a recorded env"):
        select_envs(load_results(results), ["pydantic=latest"])


def test_an_env_recorded_from_a_freeze_is_found_by_the_file_and_labelled_approximate(tmp_path):
    """The record of the real freeze (tests/data/freezes/README.md): its pydantic line is a local path, so the pydantic
    installed is the resolver's; report --env FILE finds it by the file's digest and the axes the file pins."""
    import dataclasses

    from picklematrix.envs import spec as envspec

    freeze = FREEZES / "vascular-superenhancement-4d-flow.txt"
    request = envspec.parse(str(freeze))
    source = dataclasses.replace(request.source, skipped=tuple(request.skipped))
    results = tmp_path / "results"
    _record(results, "2.8.2", "pass")  # another env, not from the file
    versions = {"cloudpickle": "3.1.1", "dask": "2025.4.1", "distributed": "2025.4.1", "pydantic": "2.11.10"}
    path = results / "box" / f"{COMMIT[:8]}-{asv_env_name('3.11.7', {**versions, 'extra': '5e63454a'})}.outcomes"
    writer = SidecarWriter(path, {"env": {"python": "3.11.7", "versions": versions}, "env_id": "freeze-env",
                                  "commit": COMMIT, "machine": "box", "case_dirs": [], "broken_cases": [],
                                  "extra": {"torch": "2.5.1"}, "case_digest": None,
                                  "requirements": source.as_dict()})
    writer.add({"case": "c", "family": "f", "method": "Client.compute", "context": "script", "outcome": "pass",
                "expected": "pass", "surprise": False, "root_cause": None, "seconds": 0.01, "samples": [0.01],
                "graph_bytes": 1, "detail": None})
    writer.finish()
    rs = load_results(results)
    shown = select_envs(rs, [str(freeze)]).current()
    assert [r.env_id for r in shown] == ["freeze-env"]
    assert shown[0].version_label()[-1] == "approximate (127 lines skipped)"
    assert "1 an editable install: vascular-superenhancement (line 242)" in " ".join(shown[0].notes)
    # the words beside the file must hold too: another cloudpickle is not this record
    with pytest.raises(BadInput, match="matches no env"):
        select_envs(rs, [f"{freeze} cloudpickle=3.1.0"])
