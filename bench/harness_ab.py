"""The harness of two commits side by side, in one run, in one environment.

    python bench/harness_ab.py --base REV [--python PATH] [--rounds 2] [--only GLOB ...] [--context all]

Checks REV out into a temporary git worktree and runs ``python -m picklematrix run --context all --samples 3``
(``--context`` picks one) with that tree's ``src`` first on ``PYTHONPATH``, then with this tree's, alternating
for ``--rounds`` rounds (the corpus each tree carries: a case's own settings, e.g. its timeout, belong to the
change being measured). Prints each run's wall time, harness overhead per cell by context, its overhead over
the cells' own compute (the means over the cells with a sample, with and without misc/bytes_64mb), and the
ratios base/this.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(python: str, src: Path, only: list[str], out: Path, context: str = "all") -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    args = [python, "-m", "picklematrix", "run", "--context", context, "--samples", "3", "--no-progress",
            "--json", str(out)]
    for glob in only:
        args += ["--only", glob]
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=out.parent)  # not a checkout: no src on the path
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"run with {src} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    data = json.loads(out.read_text())
    by_context: dict = {}
    for c in data["cells"]:
        if c.get("wall_seconds") is not None and c["outcome"] != "not-applicable":
            by_context.setdefault(c["context"], []).append(c["wall_seconds"] - sum(c.get("samples") or []))
    return {"wall": wall, "overhead": {k: statistics.mean(v) for k, v in by_context.items()},
            "ratio": {k: overhead_ratio(data["cells"], k) for k in by_context},
            "ratio_light": {k: overhead_ratio(data["cells"], k, leave_out=HEAVY) for k in by_context},
            "outcomes": sorted((c["family"], c["case"], c["method"], c["context"], c["outcome"]) for c in data["cells"])}


# the built-in corpus's one case whose compute is heavy (about 0.6 s a sample): it weighs on the means
HEAVY = "misc/bytes_64mb"


def overhead_ratio(cells: list, context: str, leave_out: str | None = None) -> tuple:
    """(overhead, compute, overhead / compute): the means over ``context``'s cells with a sample of their wall time
    less their samples, and of their samples (their own compute), as docs/performance.md counts them."""
    timed = [c for c in cells if c["context"] == context and c.get("samples") and c.get("wall_seconds") is not None
             and f"{c['family']}/{c['case']}" != leave_out]
    if not timed:
        return (0.0, 0.0, float("nan"))
    compute = statistics.mean(sum(c["samples"]) for c in timed)
    overhead = statistics.mean(c["wall_seconds"] - sum(c["samples"]) for c in timed)
    return (overhead, compute, overhead / compute)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the commit to compare with (e.g. a commit before a change)")
    p.add_argument("--python", default=sys.executable, help="an env's interpreter (dask, distributed, ipykernel)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--only", action="append", default=[])
    p.add_argument("--context", default="all", choices=["script", "kernel", "all"],
                   help="the context(s) to run (default all)")
    args = p.parse_args(argv)
    if os.sep in args.python:  # the runs start in a temporary directory: a relative path would not be found
        args.python = os.path.abspath(args.python)

    work = Path(tempfile.mkdtemp(prefix="pm-ab-"))
    base_tree = work / "base"
    subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        trees = {"base": base_tree / "src", "this": ROOT / "src"}
        runs: dict = {"base": [], "this": []}
        for i in range(args.rounds):
            for label, src in trees.items():
                r = run_once(args.python, src, args.only, work / f"{label}-{i}.json", args.context)
                runs[label].append(r)
                print(f"round {i + 1} {label:4}: {r['wall']:7.1f} s; overhead per cell "
                      + ", ".join(f"{k} {v:.3f} s" for k, v in sorted(r["overhead"].items())), flush=True)
                for k, (overhead, compute, ratio) in sorted(r["ratio"].items()):
                    light = r["ratio_light"][k][2]
                    print(f"    {k} cells with a sample: overhead {overhead * 1000:.1f} ms / compute "
                          f"{compute * 1000:.1f} ms = {ratio:.2f}x (without {HEAVY}: {light:.2f}x)", flush=True)
        base_wall = statistics.median(r["wall"] for r in runs["base"])
        this_wall = statistics.median(r["wall"] for r in runs["this"])
        print(f"median wall: base {base_wall:.1f} s, this {this_wall:.1f} s: {base_wall / this_wall:.2f}x faster")
        for context in sorted(runs["this"][0]["overhead"]):
            b = statistics.median(r["overhead"][context] for r in runs["base"])
            t = statistics.median(r["overhead"][context] for r in runs["this"])
            print(f"  {context} overhead per cell: base {b:.3f} s, this {t:.3f} s: {b / t:.2f}x")
        same = runs["base"][0]["outcomes"] == runs["this"][0]["outcomes"]
        print("outcomes: " + ("identical" if same else "DIFFER (see the JSON files in " + str(work) + ")"))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
