"""Where one ``picklematrix run``'s CPU time goes, by the kind of process that spent it.

    python3 bench/cpu_roles.py --python PATH [--only GLOB ...] [--samples N|CONTEXT=N ...] [--rounds 2]

Runs ``PATH -m picklematrix run --context all`` (a recording's samples unless ``--samples`` says) and, while it
runs, reads every process's CPU time from ``/proc`` ten times a second; each process of the run's tree is counted
at its last reading, by kind:

* ``harness``: the run itself (the script cells' lane, with its cluster's scheduler in a thread);
* ``kernel lane``: the ``--lane`` run (the kernel cells' lane, with its own scheduler; forked from the run, it
  shows the run's command line);
* ``kernel``: the IPython kernels (and the zygote they are forked from);
* ``workers and servers``: the processes forked from a multiprocessing forkserver that were still running at a
  reading (its workers, and the servers themselves);
* ``ended cells and workers``: what the forkservers' ended children cost (each server's ``cutime``/``cstime``:
  every script cell's process, and the workers a cell killed), with their page faults;
* ``other``: the rest (multiprocessing's resource tracker).

Processes that start and end between two readings are counted through their parent's children's time, and so is
a forked process that ended before its server's last reading (it was reaped: counting its own readings too would
count it twice). Linux only (``/proc``). Prints, per round and as the median of the rounds, each kind's CPU seconds and its share, and the
run's wall time and total (``RUSAGE_CHILDREN``: the same total bench/run_cpu.py prints). A run that fails prints no
figure, and the bench exits 1.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from picklematrix.run.corpus import CONTEXTS  # noqa: E402
from picklematrix.run.selection import recording_samples_args  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
KINDS = ["harness", "kernel lane", "kernel", "workers and servers", "ended cells and workers", "other"]


def _read(pid: str):
    """(parent, command line, own CPU s, ended children's CPU s, their minor faults) of ``pid``, None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return int(fields[1]), cmdline, (utime + stime) / TICK, (cutime + cstime) / TICK, int(fields[8])


def _kind(cmdline: str, top: bool, run_cmdline: str, child_of_run: bool) -> str:
    if top:
        return "harness"
    if child_of_run and cmdline == run_cmdline:  # forked from its run (picklematrix.run.lanes), its command line
        return "kernel lane"
    if "forkserver" in cmdline:  # a forked child keeps its server's command line
        return "workers and servers"
    if "ipykernel" in cmdline or "kernelzygote" in cmdline:  # a forked kernel keeps its zygote's command line
        return "kernel"
    if "--lane" in cmdline:
        return "kernel lane"
    return "other"


def measure(python: str, args: list[str]) -> dict:
    """One run: {kind: CPU seconds}, plus "wall", "total" and "faults" (the ended children's minor faults)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.Popen([python, "-m", "picklematrix", "run", "--context", "all", "--no-progress",
                                 "--json", os.path.join(tmp, "run.json"), *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
        seen: dict = {}  # pid: (parent, command line, own, ended children's, their faults, the last reading's number)
        readings = 0
        while proc.poll() is None:
            readings += 1
            for pid in os.listdir("/proc"):
                if pid.isdigit() and (reading := _read(pid)) is not None:
                    old = seen.get(int(pid))
                    # the longest command line seen: a process reads as its server's until it runs its own
                    cmdline = old[1] if old and len(old[1]) > len(reading[1]) else reading[1]
                    seen[int(pid)] = (reading[0], cmdline, *reading[2:], readings)
            time.sleep(0.1)
        wall = time.perf_counter() - t0
        stderr = proc.stderr.read().decode(errors="replace")
    if proc.returncode not in (0, 1):
        raise SystemExit(f"the run failed (exit status {proc.returncode}):\n{stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    children: dict = {}
    for pid, (parent, *_rest) in seen.items():
        children.setdefault(parent, []).append(pid)
    tree, todo = [], [proc.pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    figures = dict.fromkeys(KINDS, 0.0)
    figures["faults"] = 0
    servers = {pid for pid in tree if pid in seen and "forkserver" in seen[pid][1] and seen[pid][0] not in seen
               or pid in seen and "forkserver" in seen[pid][1] and "forkserver" not in seen[seen[pid][0]][1]}
    for pid in tree:
        if pid not in seen:
            continue
        parent, cmdline, own, ended, faults, last = seen[pid]
        if parent in servers and last < seen[parent][5]:
            continue  # ended and reaped while its server still ran: in the server's children's time
        kind = _kind(cmdline, pid == proc.pid, seen[proc.pid][1] if proc.pid in seen else "", parent == proc.pid)
        figures[kind] += own
        if pid in servers:
            figures["ended cells and workers"] += ended
            figures["faults"] += faults
    figures["wall"] = wall
    figures["total"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return figures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", required=True, help="an env's interpreter with picklematrix[kernel] installed")
    p.add_argument("--only", action="append", default=[], metavar="GLOB")
    p.add_argument("--samples", action="append", metavar="N|CONTEXT=N",
                   help="as picklematrix run's (default: a recording's)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    if not Path("/proc/self/stat").exists():
        print("this bench reads /proc: Linux only", file=sys.stderr)
        return 1
    run_args = [a for g in args.only for a in ("--only", g)]
    run_args += ([a for s in args.samples for a in ("--samples", s)] if args.samples
                 else recording_samples_args(CONTEXTS))
    rounds = []
    for i in range(args.rounds):
        figures = measure(args.python, run_args)
        rounds.append(figures)
        print(f"round {i + 1}: wall {figures['wall']:.1f} s, CPU {figures['total']:.1f} s: "
              + ", ".join(f"{k} {figures[k]:.1f}" for k in KINDS), flush=True)
    print(f"median of {len(rounds)}: wall {statistics.median(r['wall'] for r in rounds):.1f} s, "
          f"CPU {statistics.median(r['total'] for r in rounds):.1f} s")
    total = statistics.median(sum(r[k] for k in KINDS) for r in rounds)
    for k in KINDS:
        v = statistics.median(r[k] for r in rounds)
        print(f"  {k:26} {v:6.1f} CPU-s  {v / total:6.1%}")
    print(f"  ended children's minor page faults: {statistics.median(r['faults'] for r in rounds):,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
