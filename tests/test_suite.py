"""What asv's benchmark processes do with a cell (picklematrix.suite), against a real cluster."""

import json
import subprocess
import sys
import textwrap

# One benchmark process as asv runs a time_ benchmark with `repeat` samples: setup, a sample, then
# teardown + setup before each further sample, teardown at the end. (In a process of its own:
# defining a cell replaces __main__.)
ASV_SEQUENCE = textwrap.dedent("""
    import json, os
    from picklematrix import suite
    from picklematrix.selection import SAMPLES

    key = ("functions/lambda_square", "Client.compute", "script")
    seen, values = [], []
    for sample in range(SAMPLES):
        prepared = suite.prepared_cell({}, *key)
        seen.append(id(prepared))
        values.append(prepared.compute())
        prepared.release()
    first = prepared
    # a further setup (asv taking more samples than SAMPLES) gets a working cell again
    again = suite.prepared_cell({}, *key)
    values.append(again.compute())
    again.release()
    print(json.dumps({"objects": len(set(seen)), "samples": len(seen), "values": values,
                      "first_client": first.client.status, "again_is_new": again is not first}))
""")


def test_a_benchmark_process_defines_its_cell_once_for_all_samples(cluster):
    from picklematrix import suite

    env = {"PATH": "/usr/bin:/bin", suite.SCHEDULER_VAR: cluster.address}
    proc = subprocess.run([sys.executable, "-c", ASV_SEQUENCE], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # one client and one definition of the cell for all of its samples, like the harness's own samples
    assert out["objects"] == 1 and out["samples"] >= 3
    # closed after the last sample's teardown, not left to the process's end
    assert out["first_client"] == "closed"
    assert out["again_is_new"]
    assert len(set(map(json.dumps, out["values"]))) == 1, out["values"]
