"""Envs on demand (picklematrix.envs.spec): specs, changes and requirements files resolved to concrete pins with
the real uv; bisect's pure parts (picklematrix.record.bisect)."""

import subprocess

import pytest

from picklematrix import pins
from picklematrix.envs import spec as envspec
from picklematrix.envs import venvs
from picklematrix.envs.ids import asv_env_name, parse_env_id
from picklematrix.record import bisect, ondemand

from .conftest import ROOT

BASE = parse_env_id("cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11")
FREEZES = ROOT / "tests" / "data" / "freezes"


def test_an_env_id_is_taken_as_is():
    assert envspec.resolve_text(BASE.env_id) == BASE


def test_a_spec_resolves_specifiers_latest_and_moves_distributed_with_dask():
    uv = venvs.uv()
    env = envspec.resolve_text("python=3.11 dask=2024.6.2 cloudpickle=3.0.0 pydantic=~=2.10.0", uv=uv)
    assert (env.python, env.dask, env.cloudpickle) == ("3.11", "2024.6.2", "3.0.0")
    assert env.pydantic.startswith("2.10.") and env.extra == ()
    # a change of a base env: everything else stays; as of a date, the index as it stood that day
    assert envspec.resolve_text("pydantic=latest", base=BASE, as_of="2024-10-01", uv=uv).pydantic == "2.9.2"
    assert envspec.resolve_text("pydantic=2.10.6", base=BASE, uv=uv) == parse_env_id(
        "cp3.0.0-dask2024.6.2-pyd2.10.6-py3.11")
    assert envspec.resolve_text("pydantic=absent", base=BASE, uv=uv).pydantic == "absent"


def test_the_same_versions_reached_two_ways_are_one_env(tmp_path):
    uv = venvs.uv()
    freeze = FREEZES / "requirements-pyd2.9.2.txt"
    by_file = envspec.resolve_text(str(freeze), uv=uv)
    assert by_file.env_id.startswith("cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11+")  # its extra pins: another env
    assert ("pydantic-core", "2.23.4") in by_file.extra  # everything pinned there is installed
    assert "pydantic-core==2.23.4" in by_file.requirements()
    # the same pins as a spec (resolved by uv), and as another file: other spelling, order, and a pin of the
    # harness's own (packaging==26.4, which every env has) left out: one env
    pins = [line for line in freeze.read_text().splitlines() if "==" in line and not line.startswith("#")]
    by_spec = envspec.resolve_text("python=3.11 " + " ".join(p.replace("==", "=") for p in pins), uv=uv)
    other = tmp_path / "requirements.txt"
    other.write_text("\n".join(p.replace("typing-extensions", "Typing_Extensions") for p in reversed(pins)
                               if not p.startswith("packaging==")) + "\n")
    assert by_spec.env_id == by_file.env_id == envspec.resolve_text(str(other), uv=uv).env_id
    # what differs outside the axes makes another env: another tornado, another id
    tornado = envspec.resolve_text(str(FREEZES / "requirements-pyd2.8.2-tornado6.4.2.txt"), uv=uv)
    plain = envspec.resolve_text(str(FREEZES / "requirements-pyd2.8.2.txt"), uv=uv)
    assert tornado.env_id.split("+")[0] == plain.env_id.split("+")[0] == BASE.env_id
    assert len({tornado.env_id, plain.env_id, BASE.env_id}) == 3
    assert tornado.identity_extra()["tornado"] == "6.4.2" and plain.identity_extra()["tornado"] == "6.6.1"


def test_as_of_pins_the_whole_dependency_set_as_the_index_stood_that_day():
    uv = venvs.uv()
    july = envspec.resolve_text("pydantic=latest", base=BASE, as_of="2024-07-01", uv=uv)
    october = envspec.resolve_text("pydantic=latest", base=BASE, as_of="2024-10-01", uv=uv)
    assert (july.pydantic, october.pydantic) == ("2.8.0", "2.9.2")
    # not only the named packages: dask's and the kernel's dependencies, as of that day (tornado 6.4.2 and
    # toolz 1.0.0 came later, in November and October 2024)
    extra = july.identity_extra()
    assert extra["tornado"] == "6.4.1" and extra["toolz"] == "0.12.1" and extra["pydantic-core"] == "2.20.0"
    assert {"msgpack", "psutil", "pyzmq", "traitlets", "zict"} <= set(extra)
    assert "tornado==6.4.1" in july.requirements()
    # the harness's own hashed pins stay as they are (exempt from the date), and are no extra pin
    assert ("ipykernel", "6.29.5") in july.extra and "ipykernel" not in extra
    # two dates that resolve to other sets are two envs; the same date, one
    assert october.identity_extra()["msgpack"] != extra["msgpack"] and october.env_id != july.env_id
    same = envspec.resolve_text("pydantic=2.8.0", base=BASE, as_of="2024-07-01", uv=uv)
    assert same.env_id == july.env_id and "+" in july.env_id
    # the harness's declared dependencies as of that day too: tomli on python 3.10 (2.0.2 came in October)
    assert envspec.resolve_text("python=3.10 pydantic=latest", base=BASE, as_of="2024-07-01", uv=uv).identity_extra()["tomli"] == "2.0.1"


@pytest.mark.parametrize("text, match", [
    ("pydantic", "not NAME=VALUE"),
    (BASE.env_id + "+cdcf656e", "cannot be built from its id: name what it was built from"),
    ("pydantic=two", "not a version"),
    ("python=three", "python="),
])
def test_a_bad_spec_names_the_word(text, match):
    with pytest.raises(envspec.SpecError, match=match):
        envspec.parse(text, base=BASE)


def test_an_unresolvable_spec_keeps_the_resolvers_explanation():
    with pytest.raises(envspec.SpecError, match="dask=2026.8.0 cloudpickle=2.2.1") as err:
        envspec.resolve_text("dask=2026.8.0 cloudpickle=2.2.1", base=BASE, uv=venvs.uv())
    assert "cloudpickle" in str(err.value) and "unsatisfiable" in str(err.value)


def test_a_requirements_file_as_it_comes_ranges_resolve_and_a_file_without_dask_is_refused(tmp_path):
    path = tmp_path / "req.txt"
    path.write_text("dask==2024.6.2\ndistributed==2024.6.2\ncloudpickle>=3,<3.1\ntornado\n")
    request = envspec.parse(str(path))
    assert not request.exact and request.wanted["cloudpickle"] == "<3.1,>=3" and request.wanted["tornado"] == ""
    env = envspec.resolve(request, uv=venvs.uv())
    assert env.cloudpickle.startswith("3.0.") and dict(env.extra)["tornado"] and env.skipped == ()
    path.write_text("# a lock\npydantic==2.8.2 \\\n    --hash=sha256:abc\n")
    with pytest.raises(envspec.SpecError, match="pins no dask, distributed, cloudpickle"):
        envspec.parse(str(path))
    # a conda freeze names no version of dask: where it is, and how to give one beside the file
    path.write_text("dask @ file:///home/conda/feedstock_root/build_artifacts/dask-core_1/work\ncloudpickle==3.0.0\n")
    with pytest.raises(envspec.SpecError, match=rf"dask is on line 1 \(a local path.*--env '{path} dask=<version>'"):
        envspec.parse(str(path))
    assert envspec.parse(f"{path} dask=2024.6.2 python=3.12").wanted["distributed"] == "==2024.6.2"
    # a universal lock's line for other Pythons is not this env's; the Python beside the file decides
    path.write_text('dask==2024.6.2\ncloudpickle==3.0.0\ntomli==2.0.1 ; python_version < "3.11"\n-i https://x/simple\n')
    assert "tomli" not in envspec.parse(str(path)).wanted and envspec.parse(str(path)).skipped == []
    assert envspec.parse(f"{path} python=3.10").wanted["tomli"] == "==2.0.1"


def test_a_real_freeze_reads_with_its_unreproducible_lines_skipped_and_named():
    """A real pip freeze of a data-science env (tests/data/freezes/README.md: where it comes from): 253 lines,
    an editable install from git, 129 conda packages installed from local paths, a pin of the harness's own at
    another version. Reading it needs no network."""
    path = FREEZES / "vascular-superenhancement-4d-flow.txt"
    request = envspec.parse(str(path))
    skipped = {s.package: s for s in request.skipped}
    assert len(request.skipped) == 127 and request.python == "3.11" and not request.python_given
    editable = skipped["vascular-superenhancement"]
    assert (editable.line, editable.file) == (242, str(path)) and "editable install" in editable.reason
    assert "local path" in skipped["jsonschema-specifications"].reason  # file:///tmp/...: no version anywhere
    assert "the harness installs packaging==26.4" in skipped["packaging"].reason
    # a conda package's wheel names its version: pinned at it from the index, noted
    assert request.wanted["numpy"] == "==1.26.4" and "numpy" not in skipped
    assert any("numpy" in note and "1.26.4" in note for note in request.source.notes)
    # it pins dask but not distributed: distributed follows dask, noted
    assert request.wanted["distributed"] == request.wanted["dask"] == "==2025.4.1"
    assert request.wanted["pydantic"] == "absent"  # pydantic's line is a local path: skipped
    lines = [str(s) for s in request.skipped]
    assert f"{path}:242: vascular-superenhancement: an editable install" in "\n".join(lines)
    # the Python beside the file, or --python
    assert envspec.parse(f"{path} python=3.10").python == "3.10"
    assert envspec.parse(str(path), python="3.12").python_given


def test_a_real_freeze_resolves_skipping_what_cannot_install_on_the_python_given():
    """On the default Python (3.11) everything left installs; on 3.13 torch 2.5.1's kin have no wheels: an error
    saying how to give the freeze's Python when none was given, skipped and named when 3.13 was asked for."""
    uv, path = venvs.uv(), FREEZES / "vascular-superenhancement-4d-flow.txt"
    env = envspec.resolve_text(str(path), uv=uv)
    assert (env.python, env.dask, env.cloudpickle) == ("3.11", "2025.4.1", "3.1.1")
    # its pydantic line is a local path, and napari's kin need pydantic: installed as resolved, and said so
    assert env.pydantic.startswith("2.") and any("pins no pydantic it can install" in n for n in env.source.notes)
    with pytest.raises(envspec.SpecError, match="pydantic=absent was asked for, but the other pins need it"):
        envspec.resolve_text(f"{path} pydantic=absent", uv=uv)
    assert len(env.skipped) == 127 and dict(env.extra)["torch"] == "2.5.1"
    assert env.source.file == str(path) and env.source.sha256 == envspec.file_digest(path)
    assert env.env_id.startswith(f"cp3.1.1-dask2025.4.1-pyd{env.pydantic}-py3.11+")
    request = envspec.parse(str(path))
    request.python = "3.13"  # the default, were it 3.13
    with pytest.raises(envspec.SpecError, match=r"(?s)do not install on python 3\.13, the default.*torch.*--python 3\.X"):
        envspec.resolve(request, uv=uv)
    on313 = envspec.resolve_text(f"{path} python=3.13", uv=uv)
    why = {s.package: s.reason for s in on313.skipped[127:]}
    assert set(why) == {"torchaudio", "torchvision", "triton"}, why  # torch 2.5.1 itself has cp313 wheels
    assert all("no release of it installs on this Python" in r for r in why.values())
    assert "cp313" in why["torchaudio"]
    assert "torchaudio" not in dict(on313.extra) and on313.env_id != env.env_id
    # a change to it keeps the file and what it skipped, and may skip more
    changed = envspec.resolve_text("cloudpickle=3.1.0", base=env, uv=uv)
    assert changed.cloudpickle == "3.1.0" and changed.skipped == env.skipped and changed.source.file == str(path)
    assert dict(changed.extra) == dict(env.extra)


def test_a_pin_whose_old_sdist_no_longer_builds_is_skipped_and_named(tmp_path):
    """gym 0.21.0's sdist (no wheel) no longer builds with today's setuptools: the whole file would not resolve."""
    path = tmp_path / "requirements.txt"
    path.write_text((FREEZES / "requirements-pyd2.8.2.txt").read_text() + "gym==0.21.0\n")
    env = envspec.resolve_text(str(path), uv=venvs.uv())
    assert [(s.package, s.line) for s in env.skipped] == [("gym", len(path.read_text().splitlines()))]
    assert "its build fails here" in env.skipped[0].reason and "gym" not in dict(env.extra)
    assert envspec.skipped_lines(env)[0].startswith(f"{path}:")


def test_pins_needed_keeps_the_closure_of_the_tracked_packages_and_of_what_the_cases_import(tmp_path):
    path = FREEZES / "vascular-superenhancement-4d-flow.txt"
    cases = tmp_path / "cases" / "mine"
    cases.mkdir(parents=True)
    (cases / "uses_numpy.py").write_text('CASE = {"family": "mine", "summary": "numpy", "expect": "pass"}\n'
                                         "import numpy as np\nimport json\nimport yaml\nresult = np.arange(3)\n")
    assert envspec.case_imports() == {"dask", "pydantic"}  # the built-in corpus imports those only
    assert envspec.case_imports([tmp_path / "cases"]) == {"numpy", "yaml"}
    env = envspec.resolve(envspec.parse(str(path)), uv=venvs.uv(), needed=envspec.case_imports([tmp_path / "cases"]))
    extra = dict(env.extra)
    assert extra["numpy"] == "1.26.4" and extra["toolz"] == "1.0.0"  # imported; in dask's closure
    assert "torch" not in extra and "napari" not in extra and "torch" in env.source.left_out
    assert env.source.pins == "needed" and len(env.skipped) == 127
    assert any("imported by the cases but pinned by no line of the file: yaml" in n for n in env.source.notes)


def test_is_spec_leaves_the_reviews_own_forms_alone():
    assert not envspec.is_spec(BASE.env_id) and not envspec.is_spec("pydantic=2.9.2")
    assert not envspec.is_spec("pydantic=2.8.2..2.9.2")
    assert envspec.is_spec("pydantic=~=2.10") and envspec.is_spec("pydantic=latest")
    assert envspec.is_spec("python=3.11 pydantic=2.9.2") and envspec.is_spec(str(FREEZES / "requirements-pyd2.8.2.txt"))


def test_env_dicts_round_trip_with_their_extra_pins():
    env = envspec.resolve_text(str(FREEZES / "requirements-pyd2.8.2.txt"))
    assert ondemand.env_from_dict(env.as_dict()) == env
    assert ondemand.env_from_dict(env.as_dict()).source == env.source  # the file it came from, its lines skipped
    assert ondemand.env_key(env) == env.env_id and env.env_id.startswith(BASE.env_id + "+")
    assert ondemand.env_key(BASE) == BASE.env_id


def test_bisect_steps_change_one_package():
    assert bisect.between(["2.8.2", "2.9.0", "2.9.1", "2.9.2", "2.10.0"], "2.8.2", "2.9.2") == ["2.9.0", "2.9.1"]
    assert bisect.between(["2.8.2", "2.9.0", "2.9.1", "2.9.2"], "2.9.2", "2.8.2") == ["2.9.1", "2.9.0"]
    assert bisect.with_version(BASE, "distributed", "2024.8.0").env_id == "cp3.0.0-dask2024.8.0-pyd2.8.2-py3.11"
    assert bisect.with_version(BASE, "python", "3.12").python == "3.12"
    assert bisect.with_version(BASE, "NumPy", "1.26.4").extra == (("numpy", "1.26.4"),)
    assert bisect.changed({"a": "pass", "b": "pass"}, {"a": "pass", "b": "serialize-error"}) == {
        "b": ("pass", "serialize-error")}


def test_bisect_lists_releases_from_the_index():
    versions = bisect.pypi_versions("pydantic")
    assert bisect.between(versions, "2.8.2", "2.9.2") == ["2.9.0", "2.9.1"]  # 2.9.0b1, b2 only with pre=True
    assert "2.9.0b1" in bisect.pypi_versions("pydantic", pre=True)


def test_a_requirements_file_pin_that_conflicts_with_the_harness_is_skipped_naming_both(tmp_path):
    freeze = tmp_path / "requirements.txt"
    freeze.write_text((FREEZES / "requirements-pyd2.8.2.txt").read_text() + "ipykernel==6.28.0\n")
    env = envspec.resolve_text(str(freeze))
    assert [s.package for s in env.skipped] == ["ipykernel"]
    assert "the harness installs ipykernel==6.29.5" in env.skipped[0].reason and "6.28.0" in env.skipped[0].text
    assert "ipykernel==6.28.0" not in env.requirements()


def test_bisect_skips_releases_that_cannot_be_built():
    asked = []

    def differs(v):  # 3 and 5 cannot be built; the change came with 6
        asked.append(v)
        return None if v in ("3", "5") else int(v) >= 6

    # 5, just before the change, is unknown: it may be the first, and is named with the answer
    assert bisect.first_differing([str(i) for i in range(10)], differs) == ("6", ["5"])
    assert "5" in asked
    asked.clear()
    assert bisect.first_differing([str(i) for i in range(10)], lambda v: differs(v) if v != "5" else True) == (
        "5", [])
    assert "3" not in asked or "4" in asked  # a skipped release's neighbour is tried instead
    # nothing buildable between the last same and the first differing: those may be the first
    assert bisect.first_differing(["1", "2", "3", "4"], lambda v: None) == ("4", ["2", "3"])


@pytest.mark.slow
def test_an_as_of_env_installs_its_whole_dependency_set_as_of_that_day(tmp_path):
    env = envspec.resolve_text("pydantic=latest", base=BASE, as_of="2024-07-01", uv=venvs.uv())
    python = ondemand.make_venv(env, tmp_path / "venv")
    found = venvs.prepare(env, python, ROOT)  # installs, then refuses any version other than the pins
    # what was installed is what the index held that day, not today's tornado, toolz, ...
    assert found["extra"]["tornado"] == "6.4.1" and found["extra"]["toolz"] == "0.12.1"
    assert found["versions"]["pydantic"] == "2.8.0"
    # the harness's own hashed pins as they are
    kernel = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('ipykernel'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert f"ipykernel=={kernel}" in pins.ENV
    # the record's name carries the digest of what is installed: the env id's
    assert found["versions"]["extra"] == env.env_id.split("+")[1]
    assert f"-extra{env.env_id.split('+')[1]}-" in asv_env_name(found["python"], found["versions"])
