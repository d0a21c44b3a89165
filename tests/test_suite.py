"""What asv's benchmark processes do with a cell (picklematrix.suite), outside asv."""

import json
import subprocess
import sys

from .conftest import ROOT

SCRIPT = """
import json, sys
from picklematrix import selection, suite
cell = {"family": "functions", "case": "lambda_square", "method": "Client.compute", "context": "script",
        "outcome": "pass", "detail": None}
args = ("functions/lambda_square", "Client.compute", "script")
# what asv does: setup before each sample, then the timed call
prepared = []
for _ in range(3):
    prepared.append(suite.prepared_cell(cell, *args))
    prepared[-1].compute()
print(json.dumps({"same": all(p is prepared[0] for p in prepared),
                  "clients": len({id(p.client) for p in prepared})}))
"""


def test_asv_samples_of_a_cell_share_one_client_and_definition(cluster):
    """asv re-runs setup before every sample; the samples still repeat the call on one client,
    as the harness's samples do, instead of timing a fresh client's first call each time."""
    import os

    env = dict(os.environ, PICKLEMATRIX_SCHEDULER=cluster.address, PICKLEMATRIX_ONLY="functions/lambda_square")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"same": True, "clients": 1}
