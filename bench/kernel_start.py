"""What a kernel of the kernel context costs to start: launched (``python -m ipykernel_launcher``) or forked from
the zygote (picklematrix.run.kernelzygote).

    python3 bench/kernel_start.py --python PATH [--kernels 3] [--rounds 2]

Runs, under an env's interpreter (ipykernel installed) with this checkout's ``src`` first, ``KernelSession``s
of each kind in turn, ``--rounds`` times: in each, ``--kernels`` kernels one after another, each started, its
first notebook cell run (the import of picklematrix.run.inkernel and distributed that every run's first cell
makes) and stopped. Prints, per kind, the medians of the kernel process's CPU time (``/proc``) until it answered
and for that first cell, the wall time until it answered, and the zygote's own CPU time (once per session).
Linux only. A kernel that fails to start or to run its cell prints no figure, and the bench exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = r"""
import json, os, sys, time
from picklematrix.run.kernel import KernelSession

def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

fork, kernels = sys.argv[1] == "forked", int(sys.argv[2])
session = KernelSession(fork=fork)
rows = []
try:
    for _ in range(kernels):
        t0 = time.perf_counter()
        session.start()
        ready = time.perf_counter() - t0
        pid = session.km.provisioner.pid
        before = cpu(pid)
        reply = session.execute("import picklematrix.run.inkernel, distributed", 60)
        if reply.status != "ok":
            raise SystemExit(f"the first cell failed: {reply}")
        rows.append({"ready": ready, "to_ready": before, "first_cell": cpu(pid) - before})
        session.stop()
    if fork and session._zygote is False:
        raise SystemExit(f"the kernels were launched: {session.zygote_note}")
    zygote = cpu(session._zygote.proc.pid) if fork else 0.0
finally:
    session.close()
print(json.dumps({"rows": rows, "zygote": zygote}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", required=True, help="an env's interpreter with picklematrix[kernel] installed")
    p.add_argument("--kernels", type=int, default=3, help="kernels started one after another in each session")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]))
    figures = {"launched": [], "forked": []}
    zygotes = []
    for _ in range(args.rounds):
        for kind in figures:
            out = subprocess.run([args.python, "-c", PROBE, kind, str(args.kernels)], capture_output=True, text=True,
                                 env=env, timeout=600)
            if out.returncode != 0:
                print(f"FAILED, no figure: {kind} kernels: {out.stderr[-2000:]}")
                return 1
            data = json.loads(out.stdout.strip().splitlines()[-1])
            figures[kind] += data["rows"]
            if kind == "forked":
                zygotes.append(data["zygote"])
    for kind, rows in figures.items():
        med = {key: statistics.median(r[key] for r in rows) for key in ("ready", "to_ready", "first_cell")}
        print(f"{kind:8s} ({len(rows)} kernels): CPU until it answered {med['to_ready']:.2f} s, its first cell "
              f"{med['first_cell']:.2f} s, together {med['to_ready'] + med['first_cell']:.2f} s; answered after "
              f"{med['ready']:.2f} s")
    print(f"the zygote: {statistics.median(zygotes):.2f} CPU-seconds, once a run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
