"""Whether a run's cost per cell stays flat as the corpus grows: a generated corpus against the built-in one.

    python bench/corpus_scale.py [--python PATH] [--cases 1000] [--context all] [--template GLOB ...]

Generates ``--cases`` trivial cases in a temporary directory (the case format of docs/cases.md): copies of the
built-in trivial cases given by ``--template`` (default ``functions/lambda_square`` and
``functions/importable_function``), each with an id of its own. Runs ``picklematrix run`` over them, and over the
built-in templates themselves (``--only``, ``--builtin-rounds`` times), with the samples a recording takes
(``selection.SAMPLES`` in both contexts), and times each cell's progress line as it arrives: the cost of a cell
is the time between two cells' lines, whatever the run did in between (its cell, the health check, the
sidecar's write, the progress), the start-up (cluster, kernel: the first two cells) left out. Prints the mean
and median per cell of both, and their ratio (generated / built-in; 1.1 or less is linear). A run takes its
cells in ``run_order`` (every case by dask's-default-scheduler methods, then every case by the others), so two
runs of different sizes hold the methods in different proportions, and a method's cells differ in cost (a
``dask.compute(x, client=c)`` cell runs locally): with one context, each gap is given to the cell it ends (the
run's order, rebuilt from its sidecar), and the ratio that counts compares like with like, the mean per method
of both, weighted by the generated run's cells ("same mix"). With both contexts the two lanes' lines
interleave, and only the plain ratio is printed. A run that fails (an exit status other than 0 or 1, a cell
missing, a harness error) makes it exit 1 and print no ratio.

--python: an env's interpreter (dask, distributed, ipykernel); the run uses this checkout's ``src``.
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
sys.path.insert(0, str(ROOT / "src"))

from picklematrix.run.methods import METHODS  # noqa: E402
from picklematrix.run.progress import parse  # noqa: E402
from picklematrix.run.runner import run_order  # noqa: E402
from picklematrix.run.selection import SAMPLES  # noqa: E402


def generate(where: Path, templates: list[Path], n: int) -> None:
    """``n`` cases in ``where``/scale/: the templates in turn, each copy with an id of its own."""
    family = where / "scale"
    family.mkdir(parents=True)
    for i in range(n):
        template = templates[i % len(templates)]
        source = template.read_text()
        # the family is the folder's: the CASE dict says it too
        source = source.replace(f'"family": "{template.parent.name}"', '"family": "scale"', 1)
        (family / f"{template.stem}_{i:05d}.py").write_text(source)


def run(python: str, args: list[str], out: Path, label: str) -> dict:
    """``picklematrix run ARGS``: its cells' arrival times (from its progress lines), exit status, sidecar."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    command = [python, "-m", "picklematrix", "run", "--context", ARGS.context, "--samples", str(SAMPLES),
               "--json", str(out), *args]
    times = []
    t0 = time.monotonic()
    with open(out.with_suffix(".stdout"), "w") as stdout:
        proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env,
                                cwd=out.parent)  # not a checkout: no src on the path
        errors = []
        for line in proc.stderr:
            if parse(line) is not None:
                times.append(time.monotonic())
            else:
                errors.append(line)
        status = proc.wait()
    wall = time.monotonic() - t0
    problem = None
    if status not in (0, 1):
        problem = f"exit status {status}"
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError) as e:
        data, problem = {"cells": []}, problem or f"no sidecar ({e})"
    cells = data["cells"]
    if not problem and len(cells) != len(times):
        problem = f"{len(cells)} cells in the sidecar, {len(times)} progress lines"
    harness_errors = [c for c in cells if c["outcome"] == "harness-error"]
    if not problem and harness_errors:
        problem = f"{len(harness_errors)} harness error(s), e.g. {harness_errors[0]}"
    if problem:
        print(f"{label}: FAILED: {problem}\n{''.join(errors[-30:])}", file=sys.stderr)
    # from the second cell's line on: the first gap holds the kernel's start (it starts with the first kernel cell)
    gaps = [b - a for a, b in zip(times[1:], times[2:])]
    by_method: dict = {}
    if not problem and ARGS.context != "all":
        # each gap ends with a cell's line: the run's third cell onwards, in the run's order
        cases = list(dict.fromkeys((c["family"], c["case"]) for c in cells))
        methods = [m for m in METHODS if any(c["method"] == m for c in cells)]  # the run's own order
        order = run_order(cases, methods, [ARGS.context])
        for (_, method, _), gap in zip(order[2:], gaps):
            by_method.setdefault(method, []).append(gap)
    return {"problem": problem, "gaps": gaps, "by_method": by_method, "cells": len(cells), "wall": wall,
            "timing": data.get("timing")}


def main(argv=None) -> int:
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default=sys.executable, help="an env's interpreter (dask, distributed, ipykernel)")
    p.add_argument("--cases", type=int, default=1000, help="how many cases to generate (default 1000)")
    p.add_argument("--context", default="all", choices=["script", "kernel", "all"])
    p.add_argument("--template", action="append", default=[],
                   help="built-in trivial cases to copy (family/case; default functions/lambda_square and "
                        "functions/importable_function)")
    p.add_argument("--builtin-rounds", type=int, default=3, help="runs over the built-in templates (default 3)")
    ARGS = args = p.parse_args(argv)
    python = os.path.abspath(args.python) if os.sep in args.python else args.python
    names = args.template or ["functions/lambda_square", "functions/importable_function"]
    templates = [ROOT / "cases" / f"{name}.py" for name in names]
    missing = [str(t) for t in templates if not t.exists()]
    if missing:
        print(f"error: no such built-in case: {', '.join(missing)}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="pm-corpus-scale-"))
    generate(work / "cases", templates, args.cases)
    print(f"workdir {work}; {args.cases} generated cases from {', '.join(names)}; context {args.context}")

    builtin = []
    for i in range(args.builtin_rounds):
        r = run(python, [a for name in names for a in ("--only", name)], work / f"builtin-{i}.outcomes",
                f"built-in round {i + 1}")
        builtin.append(r)
        if not r["problem"]:
            print(f"built-in round {i + 1}: {r['cells']} cells, {r['wall']:.1f} s; per cell: mean "
                  f"{statistics.mean(r['gaps']) * 1000:.1f} ms, median {statistics.median(r['gaps']) * 1000:.1f} ms")
    generated = run(python, ["--cases", str(work / "cases")], work / "generated.outcomes", "generated")
    if not generated["problem"]:
        gaps = generated["gaps"]
        tenth = max(1, len(gaps) // 10)
        print(f"generated: {generated['cells']} cells, {generated['wall']:.1f} s; per cell: mean "
              f"{statistics.mean(gaps) * 1000:.1f} ms, median {statistics.median(gaps) * 1000:.1f} ms; "
              f"first tenth {statistics.median(gaps[:tenth]) * 1000:.1f} ms, last tenth "
              f"{statistics.median(gaps[-tenth:]) * 1000:.1f} ms (medians)")
    if generated["problem"] or any(r["problem"] for r in builtin):
        print("no ratio: a run failed (above)", file=sys.stderr)
        return 1
    base = statistics.mean(g for r in builtin for g in r["gaps"])
    base_median = statistics.median(g for r in builtin for g in r["gaps"])
    print(f"ratio generated / built-in, per cell: mean {statistics.mean(generated['gaps']) / base:.2f}x, "
          f"median {statistics.median(generated['gaps']) / base_median:.2f}x")
    if generated["by_method"]:
        ours = generated["by_method"]
        theirs = {m: [g for r in builtin for g in r["by_method"].get(m, [])] for m in ours}
        for m in ours:
            print(f"  {m}: built-in {statistics.mean(theirs[m]) * 1000:.1f} ms ({len(theirs[m])} cells), generated "
                  f"{statistics.mean(ours[m]) * 1000:.1f} ms ({len(ours[m])} cells), "
                  f"{statistics.mean(ours[m]) / statistics.mean(theirs[m]):.2f}x")
        weight = {m: len(ours[m]) for m in ours}
        same_mix = sum(weight[m] * statistics.mean(theirs[m]) for m in ours) / sum(weight.values())
        print(f"ratio generated / built-in, per cell, same mix (the built-in's mean per method, weighted by the "
              f"generated run's cells): {statistics.mean(generated['gaps']) / same_mix:.2f}x")
    return 0


ARGS: argparse.Namespace


if __name__ == "__main__":
    sys.exit(main())
