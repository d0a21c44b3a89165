"""matrix.toml: parsing, validation, profiles, env ids; and that code and docs agree with it."""

import json
import subprocess
import sys
import textwrap

import pytest

from picklematrix.envs.ids import asv_env_name, parse_env_id
from picklematrix.envs.matrix import MATRIX_FILE, MatrixError, load_matrix
from picklematrix.versions import ABSENT

from .conftest import ROOT

GOOD_AXES = textwrap.dedent("""
    [axes]
    python = ["3.11"]
    cloudpickle = ["3.0.0", "3.1.0"]
    dask = ["2024.6.2"]
    pydantic = ["2.8.2"]
""")


def _load(tmp_path, text):
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    return load_matrix(path)


def test_the_real_matrix_loads_and_the_default_profile_answers_the_questions():
    m = load_matrix()
    default = {e.env_id for e in m.profile("default").envs}
    assert 6 <= len(default) <= 10
    # the upstream report's era, the folk advice, the real fix, cloudpickle 2.x, pydantic v1 and 2.11.3
    for env_id in ("cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11", "cp3.1.0-dask2024.6.2-pyd2.8.2-py3.11",
                   "cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11", "cp2.2.1-dask2024.6.2-pyd2.8.2-py3.11"):
        assert env_id in default
    envs = m.profile("default").envs
    assert any(e.pydantic.startswith("1.10") for e in envs)
    assert any(e.pydantic == "2.11.3" for e in envs)
    newest = {a: max(m.axes[a], key=lambda v: tuple(int(x) for x in v.split("."))) for a in m.axes}
    assert any(all(getattr(e, a) == newest[a] for a in ("python", "cloudpickle", "dask", "pydantic")) for e in envs)
    assert any(e.dask == newest["dask"] and e.cloudpickle == "3.0.0" for e in envs)
    assert m.profile("default").baseline in default
    full = m.profile("full").envs
    assert len(full) == len({e.env_id for e in full}) > len(default)
    assert all(m.excluded(e) is None for e in full)


def test_exclusions_apply_and_have_reasons():
    m = load_matrix()
    env = parse_env_id("cp3.0.0-dask2024.6.2-pyd2.8.2-py3.13")
    assert m.excluded(env) is not None and "3.12" in m.excluded(env).reason
    assert m.excluded(parse_env_id("cp2.2.1-dask2026.8.0-pyd2.8.2-py3.11")) is not None
    assert m.excluded(parse_env_id("cp3.0.0-dask2026.8.0-pyd2.8.2-py3.13")) is None


def test_env_ids_round_trip_and_pins():
    env = parse_env_id("cp3.1.0-dask2024.6.2-pyd2.8.2-py3.11")
    assert env.env_id == "cp3.1.0-dask2024.6.2-pyd2.8.2-py3.11"
    assert env.pins() == {"cloudpickle": "3.1.0", "dask": "2024.6.2", "distributed": "2024.6.2", "pydantic": "2.8.2"}
    assert parse_env_id("cp3.1.0-dask2024.6.2-py3.11") is None
    absent = parse_env_id(f"cp3.1.0-dask2024.6.2-pyd{ABSENT}-py3.11")
    assert "pydantic" not in absent.pins()


def test_asv_env_name_labels_by_installed_versions():
    name = asv_env_name("3.11.7", {"cloudpickle": "3.0.0", "dask": "2024.6.2", "distributed": "2024.6.2",
                                   "pydantic": None})
    assert name == f"picklematrix-py3.11.7-cloudpickle3.0.0-dask2024.6.2-distributed2024.6.2-pydantic{ABSENT}"


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD_AXES.replace('python = ["3.11"]', 'python = ["3.11"]\nnumpy = ["2.0"]') +
         '[profiles.default]\nbaseline = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"\nproduct = true\n',
         "unknown axis 'numpy'"),
        (GOOD_AXES.replace('"3.1.0"', '"3.1.x"') +
         '[profiles.default]\nbaseline = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"\nproduct = true\n',
         "'3.1.x' is not a valid version"),
        (GOOD_AXES + '[profiles.default]\nbaseline = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"\n'
         'envs = ["cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11", "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"]\n',
         "duplicate env id 'cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11'"),
        (GOOD_AXES + '[profiles.default]\nbaseline = "cp9.9.9-dask2024.6.2-pyd2.8.2-py3.11"\n'
         'envs = ["cp9.9.9-dask2024.6.2-pyd2.8.2-py3.11"]\n',
         "cloudpickle 9.9.9 is not on the cloudpickle axis"),
        (GOOD_AXES + '[[exclude]]\ncloudpickle = "3.1.0"\n'
         '[profiles.default]\nbaseline = "cp3.1.0-dask2024.6.2-pyd2.8.2-py3.11"\n'
         'envs = ["cp3.1.0-dask2024.6.2-pyd2.8.2-py3.11"]\n',
         "[[exclude]] #1 needs a 'reason'"),
        (GOOD_AXES + '[profiles.nightly]\nbaseline = "x"\nproduct = true\n', "needs a 'default' profile"),
        ("[common]\npackages = []\n" + GOOD_AXES + '[profiles.default]\nbaseline = "x"\nproduct = true\n',
         "src/picklematrix/pins.py"),
        ("[axes\n", "not valid TOML"),
        (GOOD_AXES + '[profiles.default]\nbaseline = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"\nproduct = true\n'
         'aa_pair = "yes"\n', "aa_pair = 'yes': write true"),
    ],
)
def test_invalid_matrix_names_the_entry(tmp_path, text, message):
    with pytest.raises(MatrixError) as err:
        _load(tmp_path, text)
    assert message in str(err.value)
    assert str(tmp_path / "matrix.toml") in str(err.value)


def test_unknown_profile_is_named(tmp_path):
    m = load_matrix()
    with pytest.raises(MatrixError, match="unknown profile 'nightly'"):
        m.profile("nightly")


def _nox(*args, env=None, timeout=120):
    import os

    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "nox", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def test_nox_lists_one_session_per_env_of_the_profile():
    proc = _nox("--list", "--json")
    assert proc.returncode == 0, proc.stderr
    sessions = json.loads(proc.stdout)
    names = {s["session"] for s in sessions if s["name"] == "matrix"}
    default = load_matrix().profile("default")
    assert names == ({f"matrix({e.env_id})" for e in default.envs}
                     | {f"matrix(skew-{pair.name})" for pair in default.skew}
                     | {f"matrix(aa-{default.baseline})"})
    assert default.skew, "the default profile records client/cluster skew pairs"
    assert default.aa_pair, "the default profile records its baseline's A/A pair (the reviews' noise)"
    # PICKLEMATRIX_REPLICATE=2 records every env's copy in its own session: no session of its own for the pair
    replicated = json.loads(_nox("--list", "--json", env={"PICKLEMATRIX_REPLICATE": "2"}).stdout)
    assert f"matrix(aa-{default.baseline})" not in {s["session"] for s in replicated}
    smoke = json.loads(_nox("--list", "--json", env={"PICKLEMATRIX_PROFILE": "smoke"}).stdout)
    assert len([s for s in smoke if s["name"] == "matrix"]) == 2


def test_invalid_matrix_stops_nox_before_building_anything(tmp_path):
    bad = tmp_path / "matrix.toml"
    bad.write_text(MATRIX_FILE.read_text().replace('cloudpickle = ["2.2.1"', 'cloudpickle = ["two"'))
    proc = _nox("-s", "matrix", env={"PICKLEMATRIX_MATRIX": str(bad)})
    assert proc.returncode != 0
    assert "'two' is not a valid version" in proc.stderr and "nothing was built" in proc.stderr
    proc = _nox("--list", env={"PICKLEMATRIX_PROFILE": "nope"})
    assert proc.returncode != 0 and "unknown profile 'nope'" in proc.stderr


def test_the_docs_list_the_default_profile():
    # docs/matrix-toml.md's table says which question each env of the default profile answers
    text = (ROOT / "docs" / "matrix-toml.md").read_text()
    rows = {line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `cp")}
    assert rows == {env.env_id for env in load_matrix().profile("default").envs}, \
        "docs/matrix-toml.md's default-profile table and matrix.toml's default profile disagree"


def test_a_profile_s_aa_pair_is_a_session_of_its_own_recording_the_baseline_s_copy(tmp_path, monkeypatch):
    from picklematrix import cli
    from picklematrix.record.targets import targets

    a, b = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11", "cp3.1.0-dask2024.6.2-pyd2.8.2-py3.11"
    m = _load(tmp_path, GOOD_AXES + f'[profiles.default]\nbaseline = "{a}"\nenvs = ["{b}", "{a}"]\naa_pair = true\n'
              f'[profiles.other]\nbaseline = "{a}"\nenvs = ["{a}"]\n')
    monkeypatch.delenv("PICKLEMATRIX_REPLICATE", raising=False)
    found = targets(cli.parse("matrix", []), m)
    assert [(t.session_id, t.env.env_id, t.replica) for t in found] == [(b, b, 1), (a, a, 1), (f"aa-{a}", a, 2)]
    assert [t.replica for t in targets(cli.parse("matrix", ["--profile", "other"]), m)] == [1]  # not asked for
    assert [t.replica for t in targets(cli.parse("matrix", ["--env", b]), m)] == [1]  # envs on demand: none
    monkeypatch.setenv("PICKLEMATRIX_REPLICATE", "2")  # every session records its copy: no session for it
    assert [t.replica for t in targets(cli.parse("matrix", []), m)] == [1, 1]


def test_nox_starts_the_longest_recordings_first(monkeypatch):
    """The Python-minor skew pair (its cluster started again after most cells) first, the other pairs next, then
    the envs and the A/A copy in the profile's order: a long recording started last would make the whole run
    wait on it."""
    from picklematrix import cli
    from picklematrix.record.targets import longest_first, targets

    monkeypatch.delenv("PICKLEMATRIX_REPLICATE", raising=False)
    matrix = load_matrix()
    found = targets(cli.parse("matrix", []), matrix)
    ordered = longest_first(found)
    assert sorted(t.session_id for t in ordered) == sorted(t.session_id for t in found)
    pairs = [t for t in ordered if t.is_pair]
    assert ordered[:len(pairs)] == pairs and len(pairs) == len(matrix.profile("default").skew) > 1
    assert pairs[0].env.client.python != pairs[0].env.cluster.python
    assert all(t.env.client.python == t.env.cluster.python for t in pairs[1:])
    assert ordered[len(pairs):] == [t for t in found if not t.is_pair]
    listed = subprocess.run([str(ROOT / "nox"), "--list"], cwd=ROOT, capture_output=True, text=True, check=True)
    sessions = [line.split()[1] for line in listed.stdout.splitlines() if line.startswith("* matrix(")]
    assert sessions == [f"matrix({t.session_id})" for t in ordered]
