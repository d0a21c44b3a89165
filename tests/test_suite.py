"""What asv's benchmark processes do with a cell (picklematrix.run.suite), outside asv."""

import json
import os
import subprocess
import sys

from .conftest import ROOT

CASE = '''CASE = {"family": "timing", "summary": "Counts the times its task runs", "expect": "pass"}
import dask


def task(path):
    with open(path, "a") as f:
        f.write("ran\\\\n")
    return 1


result = dask.delayed(task, pure=True)(RUNS)
expected = 1
'''

# what asv does in a benchmark process: setup before each sample, then the timed call
SCRIPT = """
import json
from picklematrix.run import suite
cell = {"family": "timing", "case": "counted", "method": "Client.compute", "context": "script",
        "outcome": "pass", "detail": None}
prepared = []
for _ in range(3):
    prepared.append(suite.prepared_cell(cell, "timing/counted", "Client.compute", "script"))
    prepared[-1].compute()
print(json.dumps({"same": all(p is prepared[0] for p in prepared)}))
"""


def test_asv_samples_of_a_cell_share_one_client_and_each_computes_it(cluster, tmp_path):
    """asv re-runs setup before every sample; the samples still repeat the call on one client, as the
    harness's samples do, and each computes the cell anew (none finds the last one's result held)."""
    runs = tmp_path / "runs"
    runs.write_text("")
    (tmp_path / "cases" / "timing").mkdir(parents=True)
    (tmp_path / "cases" / "timing" / "counted.py").write_text(CASE.replace("RUNS", repr(str(runs))))
    env = dict(os.environ, PICKLEMATRIX_SCHEDULER=cluster.address, PICKLEMATRIX_CASES=str(tmp_path / "cases"))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"same": True}
    assert runs.read_text().count("ran") == 3


def test_with_a_sidecar_the_benchmarks_import_neither_dask_nor_the_warm_up(tmp_path):
    """nox -s matrix's asv only discovers the benchmarks and records the harness run's values (the sidecar's):
    importing them then costs no import of dask, distributed or the tracked packages, which asv running the
    benchmarks itself imports once in its server."""
    from picklematrix.sidecar import SidecarWriter

    path = tmp_path / "record.outcomes"
    SidecarWriter(path, {"env": {"python": "3.11.7", "versions": {}}, "env_id": "x", "commit": "0" * 40,
                         "machine": "box", "case_dirs": [], "broken_cases": [], "extra": {}}).finish()
    probe = "import sys; import picklematrix.run.suite; print(sorted({'dask', 'distributed', 'pydantic'} & set(sys.modules)))"
    found = {}
    for mode, extra in (("sidecar", {"PICKLEMATRIX_SIDECAR": str(path)}), ("asv alone", {})):
        env = {k: v for k, v in os.environ.items() if k != "PICKLEMATRIX_SIDECAR"}
        proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**env, **extra}, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        found[mode] = proc.stdout.strip()
    assert found == {"sidecar": "[]", "asv alone": "['dask', 'distributed', 'pydantic']"}
