"""A profile spread over machines: the plan, each shard's share, and the merge, down to the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from picklematrix.envs.matrix import load_matrix
from picklematrix.record import shards

from .conftest import ROOT

A = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"
B = "cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11"


@pytest.mark.parametrize("text", ["0/3", "4/3", "2", "a/b", "", "2/0"])
def test_a_bad_shard_is_named_with_what_to_write(text):
    with pytest.raises(shards.ShardError, match="K/N"):
        shards.parse_shard(text)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 200])
def test_shards_of_a_plan_never_share_an_env_and_together_hold_all(n):
    envs = [e.env_id for e in load_matrix().profile("full").envs]
    parts = [shards.shard_envs(envs, k, n) for k in range(1, n + 1)]
    assert sorted(sum(parts, [])) == sorted(envs)
    assert sum(len(p) for p in parts) == len(envs)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced


def test_the_plan_is_the_profile_with_a_cache_key_per_env(monkeypatch):
    from picklematrix import cli
    from picklematrix.record.targets import targets

    monkeypatch.delenv("PICKLEMATRIX_REPLICATE", raising=False)
    matrix = load_matrix()
    plan = shards.plan(matrix, "default")
    profile = matrix.profile("default")
    assert profile.aa_pair
    n = len(profile.envs) + len(profile.skew)
    assert [j["env_id"] for j in plan["include"]] == ([e.env_id for e in profile.envs]
                                                      + [pair.env_id for pair in profile.skew]
                                                      + [f"aa-{profile.baseline}"])
    # one job per matrix session nox lists for the profile, the A/A copy's among them
    assert [j["session"] for j in plan["include"]] == [f"matrix({t.session_id})"
                                                       for t in targets(cli.parse("matrix", []), matrix)]
    assert plan["baseline"] == profile.baseline
    keys = [j["pins_key"] for j in plan["include"][:n]]
    assert len(set(keys)) == len(keys)  # different pins, different cache keys
    envs, pairs, aa = plan["include"][:len(profile.envs)], plan["include"][len(profile.envs):n], plan["include"][n]
    assert all(j["session"] == f"matrix({j['env_id']})" for j in envs)
    # a skew pair's job is its nox session, with both interpreters (client first) for actions/setup-python
    assert [j["session"] for j in pairs] == [f"matrix(skew-{pair.name})" for pair in profile.skew]
    python_skew = next(j for j, pair in zip(pairs, profile.skew) if pair.client.python != pair.cluster.python)
    assert python_skew["python"].splitlines() == ["3.12", "3.11"]
    # the A/A copy installs the baseline's pins (its uv cache) and is recorded at the head's code only
    baseline = next(j for j in envs if j["env_id"] == profile.baseline)
    assert aa["aa"] is True and aa["pins_key"] == baseline["pins_key"] and not any(j["aa"] for j in envs + pairs)


def _results(root, files: dict):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_two_shards_recording_one_env_is_a_conflict_and_nothing_is_written(tmp_path):
    one = _results(tmp_path / "one", {"m/abc-env.json": "1", "benchmarks.json": "{}"})
    two = _results(tmp_path / "two", {"m/abc-env.json": "2", "benchmarks.json": "{}", "m/abc-other.json": "x"})
    with pytest.raises(shards.ShardError) as err:
        shards.merge([one, two], tmp_path / "merged")
    assert "m/abc-env.json" in str(err.value) and str(one) in str(err.value) and str(two) in str(err.value)
    assert not (tmp_path / "merged").exists()


def test_identical_copies_and_rewritten_shared_files_merge(tmp_path):
    one = _results(tmp_path / "one", {"m/a.json": "A", "m/machine.json": "cpu 1", "benchmarks.json": "{}"})
    two = _results(tmp_path / "two", {"m/a.json": "A", "m/b.json": "B", "m/machine.json": "cpu 2",
                                      "benchmarks.json": "{}", "m/b.outcomes.partial": "unfinished"})
    merged = shards.merge([one, two], tmp_path / "merged")
    out = tmp_path / "merged"
    assert (out / "m/a.json").read_text() == "A" and (out / "m/b.json").read_text() == "B"
    assert (out / "m/machine.json").read_text() == "cpu 1" and merged.notes  # kept the first, said so
    assert not (out / "m/b.outcomes.partial").exists()  # an unfinished record is never merged
    assert merged.identical == 2  # a.json and benchmarks.json


def _logs(started: str, harness: str) -> dict:
    return {"env.log": f"# recording started {started}\nverify ok\n", "harness.log": harness}


def test_logs_of_distinct_envs_merge_and_a_re_recorded_env_s_later_logs_win_whole(tmp_path):
    a, b = "logs/m/abc-envA", "logs/m/abc-envB"
    old = {f"{a}/{k}": v for k, v in {**_logs("2026-12-01T08:00:00+00:00", "old run"), "asv.log": "old"}.items()}
    dest = _results(tmp_path / "merged", {"m/abc-envA.json": "A", **old})
    one = _results(tmp_path / "one", {f"{a}/{k}": v for k, v in _logs("2026-12-01T09:00:00+00:00", "new").items()})
    two = _results(tmp_path / "two", {"m/abc-envB.json": "B",
                                      **{f"{b}/{k}": v for k, v in _logs("2026-12-01T08:30:00+00:00", "b").items()}})
    again = _results(tmp_path / "again", {f"{a}/{k}": v for k, v in _logs("2026-12-01T07:00:00+00:00", "x").items()})
    merged = shards.merge([one, two, again], dest)  # no conflict: logs are no result
    assert (dest / a / "harness.log").read_text() == "new" and not (dest / a / "asv.log").exists()  # one run's
    assert (dest / b / "harness.log").read_text() == "b" and (dest / "m/abc-envB.json").read_text() == "B"
    assert any(note.startswith(a) and str(one) in note for note in merged.notes), merged.notes
    # merging the same copies again changes nothing and says they are the same
    again_merged = shards.merge([one, two], dest)
    assert again_merged.copied == 0 and not [n for n in again_merged.notes if n.startswith("logs/")]


MATRIX = textwrap.dedent(f"""
    [axes]
    python = ["3.11"]
    cloudpickle = ["3.0.0"]
    dask = ["2024.6.2"]
    pydantic = ["2.8.2", "2.9.2"]

    [profiles.default]
    baseline = "{A}"
    envs = ["{A}", "{B}"]
""")


@pytest.mark.slow
def test_shards_on_separate_machines_merge_into_the_single_machine_report(tmp_path):
    # a clean clone: recording needs a committed tree, and the suite's own checkout may be in use
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    (tmp_path / "matrix.toml").write_text(MATRIX)
    env = dict(os.environ, PICKLEMATRIX_MATRIX=str(tmp_path / "matrix.toml"), PICKLEMATRIX_MACHINE="runner",
               PICKLEMATRIX_ONLY="pydantic/toplevel_model,functions/lambda_square",
               PICKLEMATRIX_TOOLS_VENV=str(tmp_path / "tools"))

    def nox(results, *args):
        proc = subprocess.run([sys.executable, "-m", "nox", "--envdir", str(tmp_path / "envs"), *args], cwd=clone,
                              env=dict(env, PICKLEMATRIX_RESULTS=str(results)), capture_output=True, text=True,
                              timeout=1200)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
        return proc

    plan = json.loads(nox(tmp_path / "unused", "-s", "plan").stdout)
    assert [j["env_id"] for j in plan["include"]] == [A, B]
    for k in (1, 2):  # two "machines", each with its own results directory
        nox(tmp_path / f"shard{k}", "-s", "matrix", "--", "--shard", f"{k}/2")
        recorded = list((tmp_path / f"shard{k}" / "runner").glob("*.outcomes"))
        assert len(recorded) == 1, f"shard {k}/2 recorded {recorded}"
    nox(tmp_path / "merged", "-s", "merge", "--", str(tmp_path / "shard1"), str(tmp_path / "shard2"))
    nox(tmp_path / "single", "-s", "matrix")  # both envs on one machine
    # merging again is refused: the merged directory already holds these envs, recorded by another run
    again = subprocess.run([sys.executable, "-m", "nox", "-s", "merge", "--", str(tmp_path / "single")], cwd=clone,
                           env=dict(env, PICKLEMATRIX_RESULTS=str(tmp_path / "merged")), capture_output=True,
                           text=True, timeout=300)
    assert again.returncode != 0 and "recorded by both" in again.stdout + again.stderr

    tables = {}
    for name in ("merged", "single"):
        proc = subprocess.run([sys.executable, "-m", "picklematrix", "report", "--results", str(tmp_path / name),
                               "--html", str(tmp_path / f"html-{name}"), "--checkout", str(clone)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        table = json.loads((tmp_path / name / "table.json").read_text())
        tables[name] = {(case["key"], env_key, column): (cell["outcome"], cell["expected"],
                                                         (cell["root_cause"] or {}).get("type"))
                        for case in table["cases"] for env_key, cells in case["cells"].items()
                        for column, cell in (cells or {}).items() if cell}
        assert {e["env_id"] for e in table["environments"]} == {A, B}
    assert tables["merged"] == tables["single"]
    assert len(tables["merged"]) == 2 * 2 * 3 * 2  # envs x cases x methods x contexts
