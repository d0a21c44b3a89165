"""Where the time of `nox -s matrix` goes, and how it compares with asv's built-in matrix.

    python bench/matrix_bench.py [--profile default] [--only GLOBS] [--cold] [--builtin-envs N]

Prints, for one run on this machine:
  * the profile end to end, cold (empty uv cache, no venvs, no tools venv) and warm (all reused);
  * per env: env build + verify, cluster start, harness run, asv run; per cell: harness overhead vs the
    cell's own compute time (from the outcome sidecars' timing block);
  * the same envs x cases recorded by asv's built-in matrix (environment_type "virtualenv": asv builds the
    envs with virtualenv + pip, installs the project, and each benchmark process brings its own cluster),
    side by side with our warm run of the same subset.
Figures are measured, never assumed; the warm run re-records (--force) into a fresh results dir.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from picklematrix import pins  # noqa: E402
from picklematrix.envs.matrix import load_matrix  # noqa: E402
from picklematrix.run.selection import ASV_TIMED_CONTEXTS, COMPUTE  # noqa: E402


def nox_matrix(work: Path, results: Path, *, envs: list[str], only: str, cache: Path, tools: Path,
               force: bool, jobs: int = 1) -> tuple[float, str]:
    shutil.rmtree(results, ignore_errors=True)  # figures from this run only
    env = dict(os.environ, UV_CACHE_DIR=str(cache), PICKLEMATRIX_RESULTS=str(results),
               PICKLEMATRIX_DIRTY_LABEL="bench", PICKLEMATRIX_MACHINE="bench", PICKLEMATRIX_TOOLS_VENV=str(tools))
    if only:
        env["PICKLEMATRIX_ONLY"] = only
    args = [sys.executable, "-m", "nox", "--envdir", str(work / "envs"), "-j", str(jobs),
            "-s", *(f"matrix({e})" for e in envs)]
    if force:
        args += ["--", "--force"]
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    (work / f"nox-{results.name}.log").write_text(log)
    if proc.returncode != 0:
        print(f"warning: nox exited {proc.returncode}; see {work / f'nox-{results.name}.log'}")
    return elapsed, log


def session_seconds(log: str) -> dict:
    """{env id: (total, env build, harness, asv incl. its cluster)} as each session logged them."""
    out = {}
    pattern = (r"nox > (\S+): recorded \S+ and \S+ in ([\d.]+) s \(env ([\d.]+) s, harness ([\d.]+) s, "
               r"asv ([\d.]+) s\)")
    for m in re.finditer(pattern, log):
        out[m.group(1)] = tuple(float(m.group(i)) for i in range(2, 6))
    return out


def sidecar_figures(results: Path) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(str(results / "*" / "*.outcomes"))):
        data = json.loads(Path(path).read_text())
        timing = data.get("timing", {})
        asv_file = Path(path[: -len(".outcomes")] + ".json")
        asv_seconds = None
        asv_repeats = {}  # (family/case, method, context) -> samples asv took
        if asv_file.exists():
            asv = json.loads(asv_file.read_text().replace("NaN", "null"))
            cols = asv["result_columns"]
            asv_seconds = sum(dict(zip(cols, v))["duration"] or 0 for v in asv["results"].values())
            timed_result = dict(zip(cols, asv["results"].get(COMPUTE) or []))
            if timed_result:
                combos = itertools.product(*timed_result["params"])
                asv_repeats = {tuple(p.strip("'") for p in combo): n
                               for combo, n in zip(combos, timed_result["stats_repeat"]) if n}
        cells = timing.get("cells") or len(data["cells"])
        timed = [c for c in data["cells"] if c["outcome"] == "pass"]
        by_context = {}
        for c in data["cells"]:
            if c.get("wall_seconds") is not None and c["outcome"] != "not-applicable":
                by_context.setdefault(c["context"], []).append(c["wall_seconds"] - sum(c.get("samples") or []))
        rows.append({
            "overhead_by_context": {k: sum(v) / len(v) for k, v in by_context.items()},
            "env": data.get("env_id"),
            "cells": cells,
            "cluster_start": timing.get("cluster_start_seconds"),
            "harness": timing.get("run_seconds"),
            "compute": timing.get("compute_seconds"),
            "overhead_per_cell": ((timing["run_seconds"] - timing["compute_seconds"]) / cells) if timing else None,
            "compute_per_cell": (timing["compute_seconds"] / cells) if timing else None,
            "asv": asv_seconds,
            # per passing cell, from whoever took its samples: asv (its contexts) or the harness
            "samples_min": min((asv_repeats.get((f"{c['family']}/{c['case']}", c["method"], c["context"]), 0)
                                if c["context"] in ASV_TIMED_CONTEXTS else len(c.get("samples") or [])
                                for c in timed), default=0),
        })
    return rows


def builtin_asv(work: Path, envs, only: str, matrix, cold: bool = False) -> float:
    """The same envs x cases through asv's own virtualenv matrix (cold: no asv envs, empty pip cache)."""
    if cold:
        shutil.rmtree(work / "builtin-env", ignore_errors=True)
        shutil.rmtree(work / "pip-cache", ignore_errors=True)
    include = []
    for env_id in envs:
        e = matrix.env(env_id)
        req = {name: version for name, version in e.pins().items()}
        # the harness's own packages, as nox -s matrix installs them (picklematrix.pins.ENV)
        req.update(dict(requirement.split("==") for requirement in pins.ENV))
        include.append({"python": e.python, "req": req})
    conf = {
        "version": 1, "project": "picklematrix", "project_url": "https://pypi.org/project/dask/",
        "repo": str(ROOT), "branches": ["HEAD"], "dvcs": "git", "environment_type": "virtualenv",
        "benchmark_dir": str(ROOT / "benchmarks"), "results_dir": str(work / "builtin-results"),
        "html_dir": str(work / "builtin-html"), "env_dir": str(work / "builtin-env"),
        # only the listed envs: exclude asv's default product, then include ours (includes skip excludes)
        "matrix": {}, "exclude": [{"python": ".*"}], "include": include, "launch_method": "forkserver",
        "build_command": ["python -m pip wheel --no-deps --no-build-isolation -w {build_cache_dir} {build_dir}"],
        "install_command": ["in-dir={env_dir} python -m pip install {wheel_file}"],
        "uninstall_command": ["return-code=any python -m pip uninstall -y {project}"],
    }
    path = work / "asv-builtin.conf.json"
    path.write_text(json.dumps(conf, indent=1))
    tools = work / "tools" / "bin" / "python"
    # asv installs picklematrix as a wheel there: the corpus is the repo's, not in the package
    env = dict(os.environ, PICKLEMATRIX_ONLY=only, PICKLEMATRIX_CASES=str(ROOT / "cases"),
               PIP_CACHE_DIR=str(work / "pip-cache"))
    env.pop("PICKLEMATRIX_SIDECAR", None)
    env.pop("PICKLEMATRIX_SCHEDULER", None)
    subprocess.run(["uv", "pip", "install", "-q", "-p", str(tools), "virtualenv", "setuptools", "wheel"], check=True)
    subprocess.run([str(tools), "-m", "asv", "machine", "--yes", "--machine", "bench-builtin", "--config", str(path)],
                   check=True, capture_output=True)
    t0 = time.perf_counter()
    proc = subprocess.run([str(tools), "-m", "asv", "run", "--config", str(path), "--machine", "bench-builtin",
                           "--launch-method", "forkserver", "HEAD^!"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    (work / "asv-builtin.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        print(f"warning: asv built-in run exited {proc.returncode}; see {work / 'asv-builtin.log'}")
    return elapsed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="default")
    p.add_argument("--only", default="", help="PICKLEMATRIX_ONLY for every run (default: the whole corpus)")
    p.add_argument("--cold", action="store_true", help="also measure a cold run (empty uv cache, no venvs)")
    p.add_argument("--builtin-envs", type=int, default=0, help="compare with asv's built-in matrix on N envs")
    p.add_argument("--builtin-only", default="", help="case globs for the built-in comparison (both sides)")
    p.add_argument("--builtin-cold", action="store_true",
                   help="compare from nothing: no venvs and empty uv/pip caches on both sides")
    p.add_argument("--jobs", "-j", type=int, default=1, help="envs at a time (nox -j) for our runs")
    p.add_argument("--workdir", default=None)
    p.add_argument("--skip-profile", action="store_true", help="only the built-in comparison")
    args = p.parse_args(argv)

    matrix = load_matrix()
    envs = [e.env_id for e in matrix.profile(args.profile).envs]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="pm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cache, tools = work / "uv-cache", work / "tools"
    print(f"workdir {work}; profile {args.profile}: {len(envs)} envs; cases: {args.only or 'all'}")

    if args.cold:
        shutil.rmtree(work / "envs", ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(tools, ignore_errors=True)
        cold, cold_log = nox_matrix(work, work / "results-cold", envs=envs, only=args.only, cache=cache,
                                    tools=tools, force=True, jobs=args.jobs)
        print(f"cold: {cold:7.1f} s end to end")
        builds = {env: figures[1] for env, figures in session_seconds(cold_log).items()}
        if builds:
            print("cold env builds (uv install into an empty venv + version check): "
                  + ", ".join(f"{b:.1f}" for b in builds.values()) + f" s; total {sum(builds.values()):.1f} s")
    warm, log = (0.0, "") if args.skip_profile else nox_matrix(work, work / "results-warm", envs=envs, only=args.only, cache=cache, tools=tools,
                           force=True, jobs=args.jobs)
    if not args.skip_profile:
        print(f"warm: {warm:7.1f} s end to end ({warm / 60:.1f} min)")
    per_session = session_seconds(log)
    print(f"{'env':42} {'session':>8} {'env':>6} {'cluster':>8} {'harness':>8} {'asv run':>8} {'asv bm':>8} "
          f"{'cells':>6} {'ovh/cell':>9} {'cmp/cell':>9} {'samples':>7}")
    nan4 = (float("nan"),) * 4
    for row in ([] if args.skip_profile else sidecar_figures(work / "results-warm")):
        total, build, _harness, asv_run = per_session.get(row["env"], nan4)
        print(f"{row['env']:42} {total:8.1f} {build:6.1f} {row['cluster_start']:8.1f} "
              f"{row['harness']:8.1f} {asv_run:8.1f} {row['asv'] or 0:8.1f} {row['cells']:6d} "
              f"{row['overhead_per_cell']:9.3f} {row['compute_per_cell']:9.3f} {row['samples_min']:7d}")
        ctx = row["overhead_by_context"]
        if ctx:
            print(f"{'':42} harness overhead per cell by context: "
                  + ", ".join(f"{k} {v:.3f} s" for k, v in sorted(ctx.items()))
                  + (f" (kernel/script {ctx['kernel'] / ctx['script']:.2f}x)" if {'kernel', 'script'} <= set(ctx) else ""))

    if args.builtin_envs:
        subset = envs[: args.builtin_envs]
        only = args.builtin_only or args.only
        state = "cold" if args.builtin_cold else "warm"
        if args.builtin_cold:
            # ours from nothing too: no venvs, an empty uv cache (the tools venv, asv itself, is kept: the
            # built-in side's asv is installed already as well)
            shutil.rmtree(work / "envs", ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
        ours, _ = nox_matrix(work, work / "results-subset", envs=subset, only=only, cache=cache, tools=tools,
                             force=True, jobs=args.jobs)
        theirs = builtin_asv(work, subset, only, matrix, cold=args.builtin_cold)
        print(f"side by side, {len(subset)} envs, cases {only or 'all'}, both {state}: nox -s matrix {ours:.1f} s, "
              f"asv built-in virtualenv matrix {theirs:.1f} s: ratio {theirs / ours:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
