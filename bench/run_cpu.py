"""CPU seconds of one ``picklematrix run``, its whole process tree (cells, kernels, lanes, workers).

    python3 bench/run_cpu.py --python PATH [--only GLOB ...] [--samples N|CONTEXT=N ...] [--serial] [--rounds 2]

Runs ``PATH -m picklematrix run --context all`` (the harness installed in that env; the samples a recording
takes unless ``--samples`` says, picklematrix.run.command's syntax, repeatable) and reads, once it has
ended, the CPU time of every process it waited for, and they for theirs (``RUSAGE_CHILDREN``): what the run
cost the machine, where the wall time says only how long it took. Prints wall and CPU seconds per round and
their medians. A run that fails prints no figure, and the bench exits 1.

Where a recording's time goes once its two CPUs are busy (the default profile, two envs side by side):
``--only misc/bytes_64mb`` against ``--only functions/lambda_square`` with ``--samples 1`` and ``3`` shows
what one case's samples cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from picklematrix.run.corpus import CONTEXTS  # noqa: E402
from picklematrix.run.selection import recording_samples_args  # noqa: E402


def run_once(python: str, only: list, samples: list[str], serial: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run, in a process of its own so that its children's usage is its own."""
    with tempfile.TemporaryDirectory(prefix="pm-cpu-") as work:
        command = [python, "-m", "picklematrix", "run", "--context", "all", *samples, "--no-progress", "--json", os.path.join(work, "run.json"),
                   *(a for g in only for a in ("--only", g)), *(["--serial"] if serial else [])]
        # a child of our own measures it: RUSAGE_CHILDREN of this process would add up every round
        probe = ("import resource, subprocess, sys, time\n"
                 "t = time.perf_counter(); code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
                 "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
                 "print(code, time.perf_counter() - t, u.ru_utime + u.ru_stime)\n")
        out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, cwd=work)
        try:
            code, wall, cpu = out.stdout.split()
        except ValueError:
            raise SystemExit(f"the run did not report: {out.stderr[-2000:]}") from None
        if int(code) not in (0, 1):  # 1: surprises, a finding
            raise SystemExit(f"`{' '.join(command)}` failed (exit status {code}): {out.stderr[-2000:]}")
        return float(wall), float(cpu)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", required=True, help="an env's interpreter with picklematrix[kernel] installed")
    p.add_argument("--only", action="append", default=[], metavar="GLOB")
    p.add_argument("--samples", action="append", metavar="N|CONTEXT=N",
                   help="as picklematrix run's (default: a recording's, selection.recording_samples)")
    p.add_argument("--serial", action="store_true", help="the kernel cells after the script cells, one lane")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    walls, cpus = [], []
    for i in range(args.rounds):
        samples = ([a for n in args.samples for a in ("--samples", n)] if args.samples
                   else recording_samples_args(CONTEXTS))
        wall, cpu = run_once(args.python, args.only, samples, args.serial)
        walls.append(wall)
        cpus.append(cpu)
        print(f"round {i + 1}: wall {wall:.1f} s, CPU {cpu:.1f} s", flush=True)
    print(f"median: wall {statistics.median(walls):.1f} s, CPU {statistics.median(cpus):.1f} s "
          f"({statistics.median(cpus) / statistics.median(walls):.2f} CPUs busy on average)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
