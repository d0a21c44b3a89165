"""A real mini matrix, end to end: nox + uv envs + the harness + asv, in two shards merged afterwards.

Also the kernel-context facts of the upstream report (dask/dask#11448), found by running:
with dask 2024.6.2 and pydantic 2.8.2 a top-level model fails in a kernel with cloudpickle 3.0.0 *and* 3.1.0,
passes in a script, and passes in a kernel with pydantic 2.9.2.
"""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from picklematrix.outcomes import CODE_OUTCOMES
from picklematrix.record import fingerprint
from picklematrix.run.corpus import CONTEXTS
from picklematrix.run.selection import ASV_TIMED_CONTEXTS, recording_samples

from .conftest import ROOT

pytestmark = pytest.mark.slow

A = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"      # the report's era
B = "cp3.0.0-dask2024.6.2-pyd2.9.2-py3.11"      # the real fix
C = "cp3.1.0-dask2024.6.2-pyd2.8.2-py3.11"      # the folk advice
BROKEN = "cp2.2.1-dask2026.8.0-pyd2.14.4-py3.11"  # unresolvable: dask 2026.8.0 needs cloudpickle >= 3
ONLY = "pydantic/toplevel_model,functions/lambda_square"

MINI_MATRIX = textwrap.dedent(f"""
    [axes]
    python = ["3.11"]
    cloudpickle = ["2.2.1", "3.0.0", "3.1.0"]
    dask = ["2024.6.2", "2026.8.0"]
    pydantic = ["2.8.2", "2.9.2", "2.14.4"]

    [profiles.default]
    baseline = "{A}"
    envs = ["{A}", "{B}", "{C}", "{BROKEN}"]
""")


def _nox(tmp_path, results, *sessions, jobs=1, extra_env=None):
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MINI_MATRIX)
    env = dict(os.environ, PICKLEMATRIX_MATRIX=str(matrix), PICKLEMATRIX_RESULTS=str(results),
               PICKLEMATRIX_ONLY=ONLY, PICKLEMATRIX_DIRTY_LABEL="e2e", PICKLEMATRIX_MACHINE="e2emachine")
    env.update(extra_env or {})
    args = [sys.executable, "-m", "nox", "-j", str(jobs), "-s", *(f"matrix({s})" for s in sessions)]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    first = _nox(tmp, tmp / "shard1", A, BROKEN)
    # two envs at once: each records into a results dir of its own, merged into shard2
    second = _nox(tmp, tmp / "shard2", B, C, jobs=2)
    return tmp, first, second


def _machine_dir(results):
    dirs = [p for p in results.iterdir() if p.is_dir() and p.name != "logs"]  # (results/logs/: the logs)
    assert len(dirs) == 1, dirs
    return dirs[0]


def _sidecar(results, env_id):
    found = []
    for path in _machine_dir(results).glob("*.outcomes"):
        data = json.loads(path.read_text())
        if data["env_id"] == env_id:
            found.append(data)
    assert len(found) == 1, f"{env_id}: {found}"
    return found[0]


def _cells(sidecar):
    return {(c["family"] + "/" + c["case"], c["method"], c["context"]): c for c in sidecar["cells"]}


def test_unresolvable_env_is_recorded_and_the_other_survives(shards):
    tmp, first, _ = shards
    assert first.returncode != 0, "an env error must make nox -s matrix exit non-zero"
    machine = _machine_dir(tmp / "shard1")
    errors = list(machine.glob(f"*-{BROKEN}.env-error"))
    assert len(errors) == 1, first.stdout[-3000:] + first.stderr[-3000:]
    error = json.loads(errors[0].read_text())
    assert error["stage"] == "install" and "cloudpickle" in error["message"]
    assert error["env"]["env_id"] == BROKEN
    sidecar = _sidecar(tmp / "shard1", A)
    assert sidecar["complete"] and len(sidecar["cells"]) == 2 * 3 * 2


def test_second_shard_succeeds(shards):
    _, _, second = shards
    assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-3000:]


def test_two_envs_recorded_at_once_both_land(shards):
    tmp, _, second = shards
    # nox really ran them side by side: both started before either finished
    log = second.stdout + second.stderr
    first_done = log.index(": success,")
    assert log.count("Starting session matrix(", 0, first_done) == 2, log[:3000]
    from asv.results import Results

    results = tmp / "shard2"
    machine = _machine_dir(results)
    recorded = [Results.load(str(p)) for p in machine.glob("*.json") if p.name != "machine.json"]
    assert {r.params["pydantic"] for r in recorded} == {"2.8.2", "2.9.2"}
    for r in recorded:
        assert r.get_result_value("cells.Outcome.track_outcome", r.get_result_params("cells.Outcome.track_outcome"))
    assert json.loads((machine / "machine.json").read_text())["machine"] == machine.name
    benchmarks = json.loads((results / "benchmarks.json").read_text())
    assert {"cells.Outcome.track_outcome", "cells.GraphSize.track_graph_bytes",
            "cells.Compute.time_compute"} <= set(benchmarks)
    assert not list(results.rglob("*.tmp-*"))


def test_asv_results_are_named_and_labelled_by_installed_versions(shards):
    tmp, _, _ = shards
    machine = _machine_dir(tmp / "shard1")
    assert machine.name.startswith("e2emachine")
    name = "picklematrix-py3.11.7-cloudpickle3.0.0-dask2024.6.2-distributed2024.6.2-pydantic2.8.2"
    # keyed by the fingerprint commit (picklematrix.record.fingerprint) the run read, which the sidecar names in full
    (sidecar_file,) = machine.glob(f"*-{name}.outcomes")
    commit = json.loads(sidecar_file.read_text())["commit"]
    assert fingerprint.fingerprint_commit(ROOT) == commit or subprocess.run(
        ["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=ROOT).returncode == 0
    result_file = machine / f"{commit[:8]}-{name}.json"
    assert result_file.exists(), sorted(p.name for p in machine.iterdir())
    assert (machine / f"{commit[:8]}-{name}.outcomes").exists()
    data = json.loads(result_file.read_text().replace("NaN", "null"))
    assert data["env_name"] == name
    assert data["params"]["cloudpickle"] == "3.0.0" and data["params"]["pydantic"] == "2.8.2"
    assert data["params"]["dask"] == data["params"]["distributed"] == "2024.6.2"
    assert data["params"]["python"] == "3.11.7" and data["params"]["machine"] == machine.name

    # asv's outcome codes agree with the sidecar, cell by cell
    columns = data["result_columns"]
    outcome_result = dict(zip(columns, data["results"]["cells.Outcome.track_outcome"]))
    cases, methods, contexts = outcome_result["params"]
    values = iter(outcome_result["result"])
    cells = _cells(_sidecar(tmp / "shard1", A))
    checked = 0
    checked_contexts = set()
    for case in cases:
        for method in methods:
            for context in contexts:
                code = next(values)
                cell = cells[(case.strip("'"), method.strip("'"), context.strip("'"))]
                if cell["outcome"] == "not-applicable":
                    assert code is None
                else:
                    assert CODE_OUTCOMES[int(code)] == cell["outcome"]
                    checked += 1
                    checked_contexts.add(context.strip("'"))
    assert checked >= 10
    assert checked_contexts == set(CONTEXTS)
    timed = dict(zip(columns, data["results"]["cells.Compute.time_compute"]))
    assert any(v is not None and v > 0 for v in timed["result"])
    sizes = dict(zip(columns, data["results"]["cells.GraphSize.track_graph_bytes"]))
    assert any(v is not None and v > 0 for v in sizes["result"])


def test_every_passing_cell_has_its_timing_samples_once(shards):
    """The harness run takes every sample; asv records those of the contexts it times, as they were taken."""
    tmp, _, _ = shards
    machine = _machine_dir(tmp / "shard1")
    result_file = next(p for p in machine.glob("*.json") if p.name != "machine.json")
    data = json.loads(result_file.read_text().replace("NaN", "null"))
    timed = dict(zip(data["result_columns"], data["results"]["cells.Compute.time_compute"]))
    combos = [tuple(p.strip("'") for p in combo) for combo in itertools.product(*timed["params"])]
    repeats = dict(zip(combos, timed["stats_repeat"]))
    samples = dict(zip(combos, timed["samples"]))
    passing = [c for c in _cells(_sidecar(tmp / "shard1", A)).items() if c[1]["outcome"] == "pass"]
    assert {key[2] for key, _ in passing} == set(CONTEXTS)
    for key, cell in passing:
        assert len(cell["samples"]) == recording_samples(key[2]), key
        if key[2] in ASV_TIMED_CONTEXTS:
            assert repeats[key] == len(cell["samples"]) and samples[key] == cell["samples"], key
        else:
            assert repeats[key] is None and samples[key] is None, key


def test_shards_merge_by_copying(shards, tmp_path):
    tmp, _, _ = shards
    merged = tmp_path / "results"
    for shard in ("shard1", "shard2"):
        shutil.copytree(tmp / shard, merged, dirs_exist_ok=True)
    machine = _machine_dir(merged)
    assert len(list(machine.glob("*.outcomes"))) == 3
    assert len([p for p in machine.glob("*.json") if p.name != "machine.json"]) == 3
    assert len(list(machine.glob("*.env-error"))) == 1
    from asv.results import Results

    loaded = [Results.load(str(p)) for p in machine.glob("*.json") if p.name != "machine.json"]
    assert {r.params["pydantic"] for r in loaded} == {"2.8.2", "2.9.2"}
    assert {r.params["cloudpickle"] for r in loaded} == {"3.0.0", "3.1.0"}


@pytest.mark.parametrize("env_id", [A, C])
def test_kernel_reproduces_the_upstream_report_with_pydantic_2_8(shards, env_id):
    tmp, _, _ = shards
    cells = _cells(_sidecar(tmp / ("shard1" if env_id == A else "shard2"), env_id))
    for method in ("dask.compute", "Client.compute"):
        kernel = cells[("pydantic/toplevel_model", method, "kernel")]
        assert kernel["outcome"] == "serialize-error", kernel
        cause = kernel["root_cause"]
        assert cause["type"] == "TypeError"
        assert any(obj in cause["message"] for obj in ("sqlite3.Connection", "_thread.lock", "_asyncio.Task"))
        assert cells[("pydantic/toplevel_model", method, "script")]["outcome"] == "pass"
    for context in ("script", "kernel"):
        assert cells[("pydantic/toplevel_model", "dask.compute(client=)", context)]["outcome"] == "ran-locally"


def test_pydantic_2_9_passes_in_the_kernel(shards):
    tmp, _, _ = shards
    cells = _cells(_sidecar(tmp / "shard2", B))
    for method in ("dask.compute", "Client.compute"):
        assert cells[("pydantic/toplevel_model", method, "kernel")]["outcome"] == "pass"
    assert cells[("pydantic/toplevel_model", "dask.compute(client=)", "kernel")]["outcome"] == "ran-locally"


def test_rerun_skips_envs_already_recorded_and_keeps_the_env_byte_compiled(shards):
    tmp, _, _ = shards
    # uv does not byte-compile, and under PYTHONDONTWRITEBYTECODE no import writes a .pyc: without the
    # env's own compile step every process of a run would compile dask, distributed, IPython from source
    venv = ROOT / ".nox" / ("matrix-" + re.sub(r"\W+", "-", B))
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    pycache = Path(site) / "distributed" / "__pycache__"
    shutil.rmtree(pycache, ignore_errors=True)
    again = _nox(tmp, tmp / "shard2", B, extra_env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already recorded" in again.stderr + again.stdout
    assert "asv run" not in again.stderr + again.stdout
    assert list(pycache.glob("client.cpython-311.pyc")), f"{venv.name}: distributed/client.py is not byte-compiled"


def test_a_dirty_tree_is_refused_without_a_label(tmp_path):
    # in a path results depend on (picklematrix.record.fingerprint): an uncommitted change to tests/ would not count
    probe = ROOT / "src" / "picklematrix" / "_uncommitted_probe.txt"
    probe.write_text("makes the work tree dirty for this test\n")
    try:
        matrix = tmp_path / "matrix.toml"
        matrix.write_text(MINI_MATRIX)
        env = {k: v for k, v in os.environ.items() if k != "PICKLEMATRIX_DIRTY_LABEL"}
        env.update(PICKLEMATRIX_MATRIX=str(matrix), PICKLEMATRIX_RESULTS=str(tmp_path / "results"))
        proc = subprocess.run([sys.executable, "-m", "nox", "-s", f"matrix({A})"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
    finally:
        probe.unlink()
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr  # under nox's (default) parallel mode a session's output is on stdout
    assert "refusing to record" in out and "_uncommitted_probe.txt" in out
    assert "PICKLEMATRIX_DIRTY_LABEL" in out
    assert not (tmp_path / "results").exists()


def test_a_head_that_moved_during_the_run_is_refused(tmp_path):
    # What a session of a nox -j run sees when a commit landed after nox started:
    # the commit nox read first (handed down in the environment) is no longer HEAD.
    proc = _nox(tmp_path, tmp_path / "results", A, extra_env={"_PICKLEMATRIX_RUN_COMMIT": "0" * 40})
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "HEAD moved from 00000000" in out and "Run nox again" in out
    assert not (tmp_path / "results").exists()


def test_asv_records_the_harness_s_timings_and_runs_no_cell_itself(tmp_path):
    # timing/fails_when_timed raises in a process that has the sidecar's path, as asv's benchmark processes had
    cases = ROOT / "tests" / "data" / "asv_failing"
    results = tmp_path / "results"
    proc = _nox(tmp_path, results, A, extra_env={"PICKLEMATRIX_CASES": str(cases), "PICKLEMATRIX_ONLY": ""})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    from asv.results import Results

    (recorded,) = [Results.load(str(p)) for p in _machine_dir(results).glob("*.json") if p.name != "machine.json"]
    params = recorded.get_result_params("cells.Compute.time_compute")
    # dask.compute @script of each case: the first of the 6 method x context cells of a case
    timed = dict(zip(params[0], recorded.get_result_value("cells.Compute.time_compute", params)[::6]))
    assert timed["'timing/plain'"] > 0 and timed["'timing/fails_when_timed'"] > 0
    outcomes = recorded.get_result_value("cells.Outcome.track_outcome",
                                         recorded.get_result_params("cells.Outcome.track_outcome"))
    assert outcomes[0] == 0  # and its outcomes are there


def test_a_broken_case_file_fails_the_env_and_the_other_cases_are_kept(tmp_path):
    cases = tmp_path / "cases"
    (cases / "mix").mkdir(parents=True)
    (cases / "mix" / "good.py").write_text(
        (ROOT / "tests" / "data" / "asv_failing" / "timing" / "plain.py").read_text().replace('"timing"', '"mix"'))
    (cases / "mix" / "broken.py").write_text("CASE = {\n")  # a syntax error
    results = tmp_path / "results"
    proc = _nox(tmp_path, results, A, extra_env={"PICKLEMATRIX_CASES": str(cases), "PICKLEMATRIX_ONLY": ""})
    out = proc.stdout + proc.stderr
    # fails loudly, naming the broken file and what to do ...
    assert proc.returncode != 0, out[-3000:]
    assert "broken case file" in out and "broken.py" in out and "--force" in out, out[-3000:]
    # ... after recording the other cases: the sidecar, complete, and asv's result, with the good case timed
    (sidecar,) = _machine_dir(results).glob("*.outcomes")
    data = json.loads(sidecar.read_text())
    assert data["complete"]
    assert {(c["case"], c["context"]) for c in data["cells"]} == {("good", context) for context in CONTEXTS}
    assert any("broken.py" in b["path"] for b in data["broken_cases"])
    from asv.results import Results

    recorded = Results.load(str(sidecar.with_suffix(".json")))
    timed = recorded.get_result_value("cells.Compute.time_compute",
                                      recorded.get_result_params("cells.Compute.time_compute"))
    assert any(v is not None and v > 0 for v in timed), timed
    assert not list(_machine_dir(results).glob("*.partial"))
    # recorded: the next run says so, and names the broken file again
    again = _nox(tmp_path, results, A, extra_env={"PICKLEMATRIX_CASES": str(cases), "PICKLEMATRIX_ONLY": ""})
    assert "already recorded" in again.stdout + again.stderr and "broken.py" in again.stdout + again.stderr


def test_a_checkout_at_a_long_path_records(tmp_path):
    """From a clone of this repository's HEAD at a path over 100 characters, one env records.

    nox points each session's TMPDIR below the checkout (<checkout>/.nox/<session>/tmp), where the Unix
    sockets of multiprocessing, asv's forkserver and the kernel would pass the 107-byte limit: the
    worker processes never started and the run hung. The timeout turns a hang into a failure.
    """
    checkout = tmp_path / ("a-checkout-at-an-ordinary-path-" + "long" * 20)
    assert len(str(checkout)) > 100
    subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
    results = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKLEMATRIX_") and k != "TMPDIR"}
    env.update(PICKLEMATRIX_RESULTS=str(results), PICKLEMATRIX_ONLY="functions/lambda_square",
               PICKLEMATRIX_MACHINE="longpath", PICKLEMATRIX_TOOLS_VENV=str(tmp_path / "tools"))
    try:
        proc = subprocess.run([sys.executable, "-m", "nox", "-s", f"matrix({A})"], cwd=checkout, env=env,
                              capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"nox -s matrix({A}) from {checkout} did not finish in 900 s (the Unix socket hang?):\n"
                    f"{(e.stdout or b'')[-3000:]!r}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    sidecar = _sidecar(results, A)
    assert sidecar["complete"] and len(sidecar["cells"]) == 3 * 2  # one case x three methods x two contexts
    assert {c["outcome"] for c in sidecar["cells"]} <= {"pass", "ran-locally"}, sidecar["cells"]
    machine = _machine_dir(results)
    assert machine.name == "longpath"
    assert [p for p in machine.glob("*.json") if p.name != "machine.json"], sorted(p.name for p in machine.iterdir())


def test_two_corpora_recorded_for_one_env_coexist_and_a_review_compares_like_with_like(tmp_path):
    """The built-in corpus and a user's case folders, recorded for one env in one results directory: two records
    (the corpus is part of a record's identity: its digest in the asv name), neither replacing the other, each
    found again as already recorded; the report shows both, labelled; a review compares records of one corpus."""
    mine = tmp_path / "mine"
    shutil.copytree(ROOT / "tests" / "data" / "cases" / "paths", mine / "paths")
    user = {"PICKLEMATRIX_CASES": str(mine), "PICKLEMATRIX_ONLY": ""}
    results = tmp_path / "results"
    for extra in (None, user):
        proc = _nox(tmp_path, results, A, extra_env=extra)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        assert "recording again" not in proc.stdout + proc.stderr
    heads = {json.loads(p.read_text())["case_digest"]: p for p in _machine_dir(results).glob("*.outcomes")}
    digest = fingerprint.case_digest([mine])
    assert set(heads) == {None, digest}, heads
    assert f"-cases{digest[:8]}-" in heads[digest].name and "-cases" not in heads[None].name
    assert heads[digest].with_suffix(".json").exists() and heads[None].with_suffix(".json").exists()
    for extra in (None, user):  # each is found again; neither is replaced
        again = _nox(tmp_path, results, A, extra_env=extra)
        assert "already recorded" in again.stdout + again.stderr, (again.stdout + again.stderr)[-3000:]
    assert len(list(_machine_dir(results).glob("*.outcomes"))) == 2
    # the user's cases for another env too: a review of the user's corpus compares A and C, both of it
    proc = _nox(tmp_path, results, C, extra_env=user)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "picklematrix", *args, "--results", str(results),
                               "--checkout", str(ROOT)], capture_output=True, text=True, timeout=600)

    report = cli("report", "--html", str(tmp_path / "html"))
    assert report.returncode in (0, 1), report.stdout[-3000:] + report.stderr[-3000:]
    shown = json.loads((results / "table.json").read_text())["environments"]
    labels = [e["label"] for e in shown if e["env_id"] == A]
    assert len(labels) == 2 and sum(f"cases: mine ({digest[:8]})" in label for label in labels) == 1, labels
    review = cli("review", "--from", A, "--to", C, "--cases", str(mine))
    assert review.returncode in (0, 1), review.stdout[-3000:] + review.stderr[-3000:]
    assert f"cases: mine ({digest[:8]})" in review.stdout and "toplevel_model" in review.stdout
    assert "lambda_square" not in review.stdout  # a built-in case: not in this corpus's records
    # the built-in corpus has no record of C: that review has nothing to compare, and says so
    builtin = cli("review", "--from", A, "--to", C)
    assert builtin.returncode == 2 and "no such environment recorded" in builtin.stderr, builtin.stderr[-3000:]


def test_a_profile_s_aa_pair_records_the_baseline_twice_and_a_review_measures_its_noise(tmp_path):
    """`aa_pair = true`: `nox -s matrix` records the baseline in its own session and again in matrix(aa-<id>),
    the copy under "<machine>-rep2", where the review finds the A/A pair without a step of the user's."""
    from picklematrix.report.compare import DEFAULT_FACTOR, measure_noise
    from picklematrix.report.results import load_results

    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MINI_MATRIX.replace(f'envs = ["{A}", "{B}", "{C}", "{BROKEN}"]', f'envs = ["{A}"]\naa_pair = true'))
    results = tmp_path / "results"
    env = dict(os.environ, PICKLEMATRIX_MATRIX=str(matrix), PICKLEMATRIX_RESULTS=str(results),
               PICKLEMATRIX_ONLY="functions/lambda_square", PICKLEMATRIX_DIRTY_LABEL="e2e",
               PICKLEMATRIX_MACHINE="aa")
    env.pop("PICKLEMATRIX_REPLICATE", None)
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "matrix"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1500)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert f"matrix(aa-{A})" in out and "(copy 2)" in out, out[-5000:]
    machines = sorted(p.name for p in results.iterdir() if p.is_dir() and p.name != "logs")
    machine = machines[0]  # "aa", or "aa-e2e" from a dirty tree
    assert machines == [machine, f"{machine}-rep2"], machines
    rs = load_results(results, checkout=ROOT)
    (first,) = [r for r in rs.current() if r.machine == machine]
    noise = measure_noise(rs, first, DEFAULT_FACTOR, None, A)
    assert noise["pair"] == {"a": first.key, "b": next(r.key for r in rs.current() if r.machine == f"{machine}-rep2")}
    assert noise["compared"] >= 1 and "noise not measured" not in noise["message"], noise
