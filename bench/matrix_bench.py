"""Where the time of `nox -s matrix` goes, and how it compares with asv's built-in matrix.

    python bench/matrix_bench.py [--checkout DIR] [--profile default] [--only GLOBS] [--cold] [--builtin-envs N]
                                 [--rounds N]

Runs in nox's venv (nox and uv on PATH: PATH=$PWD/.nox/_nox/bin:$PATH). Measures a clone of ``--checkout``
(default: this checkout) at its HEAD, in ``--workdir`` (its venvs, uv cache, asv tools venv and results all
there), so that two commits are measured the same way by the same bench: this file's, with ``--checkout`` naming
the other commit's checkout. Prints, for one run on this machine:

  * the profile end to end, every session ``./nox -s matrix`` runs for it (its envs, skew pairs and A/A pair;
    ``--envs-only``: its envs only), cold (``--cold``: empty uv cache, no venvs, no tools venv) and warm (all
    reused; the warm run re-records everything, ``--force``, into a fresh results dir);
  * per recording: session, env build + verify, cluster start, harness run, asv's phase; per cell: harness
    overhead vs the cell's own compute time (from the outcome sidecars' timing block);
  * ``--builtin-envs N``: the first N envs x cases recorded by asv's built-in matrix (environment_type
    "virtualenv": asv builds the envs with virtualenv + pip, builds and installs the project, and each benchmark
    process brings its own cluster), side by side with ``./nox -s matrix`` of the same envs; ``--rounds N``: N
    times, the two sides taking turns to go first, and the median of the N ratios (one run of each side moves the
    ratio by up to half a unit on a 2-CPU VM); with how busy our side kept the machine's CPUs (``/proc/stat``: what
    it left idle, at its start and end and while cells waited, is what better scheduling could still win).

A figure comes only from a run that succeeded: a run that fails (nox's or asv's exit status, or a record
missing) is named with its log, prints no figure, and the bench exits 1. With ``--rounds``, a failed round
prints none of the rounds' figures.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import re
import shutil
import statistics
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

# What asv's built-in matrix needs in each env besides the project's pins to build the project's wheel: asv builds
# it without build isolation (build_command below), so pyproject.toml's [build-system] requirement must be there.
BUILD_REQUIREMENTS = {"hatchling": "1.33.0"}


def cpu_times() -> tuple[int, int] | None:
    """(all, idle) CPU time of the machine so far, in clock ticks (``/proc/stat``); None where there is none."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(ticks), ticks[3] + ticks[4]  # idle and iowait


def busy_since(before) -> float | None:
    """The share of the machine's CPU time that was busy since ``before`` (cpu_times()): what a run left idle."""
    after = cpu_times()
    if before is None or after is None or after[0] == before[0]:
        return None
    return 1 - (after[1] - before[1]) / (after[0] - before[0])


class RunFailed(Exception):
    """A measured run failed: no figure comes from it. The message names the run and its log."""


def clone(checkout: Path, work: Path) -> Path:
    """A clone of ``checkout``'s HEAD in ``work`` (made once, then brought to that HEAD): what is measured."""
    dest = work / "checkout"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True,
                          check=True).stdout.strip()
    if not (dest / ".git").exists():
        subprocess.run(["git", "clone", "-q", str(checkout), str(dest)], check=True)
    subprocess.run(["git", "fetch", "-q", str(checkout), head], cwd=dest, check=True)
    subprocess.run(["git", "checkout", "-q", "--force", head], cwd=dest, check=True)
    return dest


def nox_matrix(work: Path, checkout: Path, results: Path, *, sessions: list[str], profile: str, only: str,
               jobs: int | None, label: str, matrix_file: str | None = None) -> tuple[float, str]:
    """``./nox -s SESSIONS -- --profile P --force`` in ``checkout`` into a fresh ``results``; (seconds, output).
    Raises RunFailed when nox fails."""
    shutil.rmtree(results, ignore_errors=True)  # figures from this run only
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PICKLEMATRIX_", "_PICKLEMATRIX_"))}
    env.update(UV_CACHE_DIR=str(work / "uv-cache"), PICKLEMATRIX_RESULTS=str(results), PICKLEMATRIX_MACHINE="bench",
               PICKLEMATRIX_TOOLS_VENV=str(work / "tools"))
    if only:
        env["PICKLEMATRIX_ONLY"] = only
    if matrix_file:
        env["PICKLEMATRIX_MATRIX"] = matrix_file
    args = [sys.executable, "-m", "nox", *(["-j", str(jobs)] if jobs else []), "-s", *sessions,
            "--", "--profile", profile, "--force"]
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=checkout, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    log_path = work / f"nox-{label}.log"
    log_path.write_text(f"$ {' '.join(args)}\n{log}")
    if proc.returncode != 0:
        raise RunFailed(f"{label}: `nox` exited {proc.returncode}; see {log_path}")
    return elapsed, log


RECORDED = re.compile(r"nox > (\S+)(?: \(copy \d+\))?: recorded (\S+) and \S+ in ([\d.]+) s \(env ([\d.]+) s, "
                      r"harness ([\d.]+) s, asv ([\d.]+) s(?:, waited ([\d.]+) s for a run slot)?\)")


def session_seconds(log: str) -> dict:
    """{record path (machine/file): (total, env build, harness, asv, run-slot wait)} as each session logged them."""
    return {m[2]: tuple(float(m[i] or 0) for i in range(3, 8)) for m in RECORDED.finditer(log)}


def sidecar_figures(results: Path) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(str(results / "*" / "*.outcomes"))):
        data = json.loads(Path(path).read_text())
        timing = data.get("timing", {})
        asv_file = Path(path[: -len(".outcomes")] + ".json")
        asv_repeats = {}  # (family/case, method, context) -> samples asv holds
        if asv_file.exists():
            asv = json.loads(asv_file.read_text().replace("NaN", "null"))
            timed_result = dict(zip(asv["result_columns"], asv["results"].get(COMPUTE) or []))
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
        machine = Path(path).parent.name
        rows.append({
            "record": f"{machine}/{asv_file.name}",
            "label": data.get("env_id") + (" (A/A copy)" if re.search(r"-rep\d+$", machine) else ""),
            "overhead_by_context": {k: sum(v) / len(v) for k, v in by_context.items()},
            "cells": cells,
            "cluster_start": timing.get("cluster_start_seconds"),
            "overhead_per_cell": ((timing["run_seconds"] - timing["compute_seconds"]) / cells) if timing else None,
            "compute_per_cell": (timing["compute_seconds"] / cells) if timing else None,
            # per passing cell: the samples asv holds (its contexts), else the sidecar's
            "samples_min": min((asv_repeats.get((f"{c['family']}/{c['case']}", c["method"], c["context"]), 0)
                                if c["context"] in ASV_TIMED_CONTEXTS else len(c.get("samples") or [])
                                for c in timed), default=0),
        })
    return rows


def record_lines(results: Path, log: str) -> list[str]:
    """The per-recording table of one run, checked first: every record nox named is there, and every record
    there has nox's line (else RunFailed, and no line of it is printed)."""
    per_session = session_seconds(log)
    if not per_session:
        raise RunFailed(f"{results}: nox's output has no `recorded` line")
    rows = sidecar_figures(results)
    missing = sorted(set(per_session) - {r["record"] for r in rows})
    if missing:
        raise RunFailed(f"{results}: nox said it recorded {', '.join(missing)}, which is not there")
    lines = [f"{'record':56} {'session':>8} {'env':>6} {'wait':>6} {'cluster':>8} {'harness':>8} {'asv':>6} "
             f"{'cells':>6} {'ovh/cell':>9} {'cmp/cell':>9} {'samples':>7}"]
    for row in rows:
        if row["record"] not in per_session:
            raise RunFailed(f"{results}: {row['record']} has no `recorded` line in nox's output")
        total, build, harness, asv, waited = per_session[row["record"]]
        lines.append(f"{row['label']:56} {total:8.1f} {build:6.1f} {waited:6.1f} {row['cluster_start']:8.1f} "
                     f"{harness:8.1f} {asv:6.1f} {row['cells']:6d} {row['overhead_per_cell']:9.3f} "
                     f"{row['compute_per_cell']:9.3f} {row['samples_min']:7d}")
        ctx = row["overhead_by_context"]
        if ctx:
            lines.append(f"{'':56} harness overhead per cell by context: "
                         + ", ".join(f"{k} {v:.3f} s" for k, v in sorted(ctx.items()))
                         + (f" (kernel/script {ctx['kernel'] / ctx['script']:.2f}x)"
                            if {"kernel", "script"} <= set(ctx) else ""))
    asv = [figures[3] for figures in per_session.values()]
    lines.append(f"asv's phase per recording: {min(asv):.1f}-{max(asv):.1f} s, mean {sum(asv) / len(asv):.1f} s "
                 f"over {len(asv)}")
    return lines


def builtin_asv(work: Path, checkout: Path, envs, only: str, matrix, cold: bool = False) -> float:
    """The same envs x cases through asv's own virtualenv matrix (cold: no asv envs, empty pip cache); seconds.
    Raises RunFailed when asv fails or records less than every env's timings."""
    if cold:
        shutil.rmtree(work / "builtin-env", ignore_errors=True)
        shutil.rmtree(work / "pip-cache", ignore_errors=True)
    results = work / "builtin-results"
    shutil.rmtree(results, ignore_errors=True)  # figures from this run only
    include = []
    for env_id in envs:
        e = matrix.env(env_id)
        req = dict(e.pins())
        # the harness's own packages, as nox -s matrix installs them (picklematrix.pins.ENV), and what asv needs
        # to build the project's wheel in the env
        req.update(dict(requirement.split("==") for requirement in pins.ENV))
        req.update(BUILD_REQUIREMENTS)
        include.append({"python": e.python, "req": req})
    conf = {
        "version": 1, "project": "picklematrix", "project_url": "https://pypi.org/project/dask/",
        "repo": str(checkout), "branches": ["HEAD"], "dvcs": "git", "environment_type": "virtualenv",
        "benchmark_dir": str(checkout / "benchmarks"), "results_dir": str(results),
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
    # asv installs picklematrix as a wheel there: the corpus is the checkout's
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PICKLEMATRIX_", "_PICKLEMATRIX_"))}
    env.update(PICKLEMATRIX_ONLY=only, PICKLEMATRIX_CASES=str(checkout / "cases"), PIP_CACHE_DIR=str(work / "pip-cache"))
    subprocess.run(["uv", "pip", "install", "-q", "-p", str(tools), "virtualenv", "setuptools", "wheel"], check=True)
    subprocess.run([str(tools), "-m", "asv", "machine", "--yes", "--machine", "bench-builtin", "--config", str(path)],
                   check=True, capture_output=True)
    if not cold:  # warm: asv's envs exist before the clock starts, as ours do
        proc = subprocess.run([str(tools), "-m", "asv", "setup", "--config", str(path)], cwd=checkout, env=env,
                              capture_output=True, text=True)
        (work / "asv-builtin-setup.log").write_text(proc.stdout + proc.stderr)
        # (asv 0.6.6's `asv setup` exits 1 even when it made every env: it returns them to sys.exit. So its
        # envs are what says whether it worked.)
        made = [p for p in (work / "builtin-env").glob("*/bin/python")]
        if len(made) < len(envs):
            raise RunFailed(f"asv's built-in matrix: `asv setup` made {len(made)} of {len(envs)} envs "
                            f"(exit status {proc.returncode}); see {work / 'asv-builtin-setup.log'}")
    t0 = time.perf_counter()
    proc = subprocess.run([str(tools), "-m", "asv", "run", "--config", str(path), "--machine", "bench-builtin",
                           "--launch-method", "forkserver", "HEAD^!"], cwd=checkout, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    log_path = work / "asv-builtin.log"
    log_path.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RunFailed(f"asv's built-in matrix: `asv run` exited {proc.returncode}; see {log_path}")
    recorded = [p for p in (results / "bench-builtin").glob("*.json") if p.name != "machine.json"]
    timed = 0
    for p in recorded:
        data = json.loads(p.read_text().replace("NaN", "null"))
        compute = dict(zip(data["result_columns"], data["results"].get(COMPUTE) or []))
        timed += any(v is not None for v in compute.get("result") or [])
    if len(recorded) != len(envs) or timed != len(envs):
        raise RunFailed(f"asv's built-in matrix recorded {len(recorded)} of {len(envs)} envs, {timed} with "
                        f"timings; see {log_path}")
    return elapsed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkout", default=str(ROOT), help="the checkout whose HEAD is measured (default: this one)")
    p.add_argument("--profile", default="default")
    p.add_argument("--matrix", default=None, help="another matrix file (PICKLEMATRIX_MATRIX) for every run")
    p.add_argument("--envs-only", action="store_true", help="the profile's envs only, not its skew or A/A pairs")
    p.add_argument("--only", default="", help="PICKLEMATRIX_ONLY for every run (default: the whole corpus)")
    p.add_argument("--cold", action="store_true", help="also measure a cold run (empty uv cache, no venvs)")
    p.add_argument("--builtin-envs", type=int, default=0, help="compare with asv's built-in matrix on N envs")
    p.add_argument("--builtin-only", default="", help="case globs for the built-in comparison (both sides)")
    p.add_argument("--builtin-cold", action="store_true",
                   help="compare from nothing: no venvs and empty uv/pip caches on both sides")
    p.add_argument("--rounds", type=int, default=1,
                   help="the built-in comparison N times, the two sides taking turns to go first; prints each "
                        "round's ratio and their median")
    p.add_argument("--jobs", "-j", type=int, default=None,
                   help="nox -j for our runs (default: the checkout's noxfile's own)")
    p.add_argument("--workdir", default=None)
    p.add_argument("--skip-profile", action="store_true", help="only the built-in comparison")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds: at least 1")
    if args.builtin_cold and args.rounds > 1:
        p.error("--builtin-cold measures one round (the first would leave the caches warm for the next)")

    work = Path(args.workdir or tempfile.mkdtemp(prefix="pm-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    checkout = clone(Path(args.checkout).resolve(), work)
    matrix_file = str(Path(args.matrix).resolve()) if args.matrix else None
    matrix = load_matrix(matrix_file or checkout / "matrix.toml")
    envs = [e.env_id for e in matrix.profile(args.profile).envs]
    sessions = [f"matrix({e})" for e in envs] if args.envs_only else ["matrix"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True,
                            text=True).stdout.strip()
    print(f"workdir {work}; checkout {args.checkout} at {commit}; profile {args.profile}: {len(envs)} envs"
          f"{' only' if args.envs_only else ' and its pairs'}; cases: {args.only or 'all'}; nox -j "
          f"{args.jobs or '(the noxfile’s)'}")

    failed = []
    figures = {}
    if not args.skip_profile:
        if args.cold:
            for stale in (checkout / ".nox", work / "uv-cache", work / "tools"):
                shutil.rmtree(stale, ignore_errors=True)
        for state in (["cold"] if args.cold else []) + ["warm"]:
            try:
                seconds, log = nox_matrix(work, checkout, work / f"results-{state}", sessions=sessions,
                                          profile=args.profile, only=args.only, jobs=args.jobs, label=state,
                                          matrix_file=matrix_file)
                lines = record_lines(work / f"results-{state}", log)
                figures[state] = seconds
                print(f"{state}: {seconds:7.1f} s end to end ({seconds / 60:.1f} min)")
                print("\n".join(lines))
            except RunFailed as e:
                print(f"FAILED, no figure: {e}")
                failed.append(state)
        if {"cold", "warm"} <= set(figures):
            print(f"cold {figures['cold']:.1f} s, warm {figures['warm']:.1f} s: cold/warm "
                  f"{figures['cold'] / figures['warm']:.2f}x")

    if args.builtin_envs:
        subset = envs[: args.builtin_envs]
        only = args.builtin_only or args.only
        state = "cold" if args.builtin_cold else "warm"
        if args.builtin_cold:
            # ours from nothing too: no venvs, an empty uv cache (the tools venv, asv itself, is kept: the
            # built-in side's asv is installed already as well)
            shutil.rmtree(checkout / ".nox", ignore_errors=True)
            shutil.rmtree(work / "uv-cache", ignore_errors=True)
        subset_sessions = [f"matrix({e})" for e in subset]
        ratios, rounds = [], []
        try:
            if not args.builtin_cold and not all((checkout / ".nox" / ("matrix-" + re.sub(r"\W+", "-", e))).is_dir()
                                                 for e in subset):
                print("warm: building our envs first (not timed)")
                nox_matrix(work, checkout, work / "results-subset", sessions=subset_sessions, profile=args.profile,
                           only=only, jobs=args.jobs, label="subset-warm-up", matrix_file=matrix_file)
            for i in range(args.rounds):
                # the two sides take turns going first: a machine that slows or speeds up during the bench
                # weighs on both
                sides = {}
                for side in (("ours", "theirs") if i % 2 == 0 else ("theirs", "ours")):
                    if side == "ours":
                        before = cpu_times()
                        sides[side], _ = nox_matrix(work, checkout, work / "results-subset", sessions=subset_sessions,
                                                    profile=args.profile, only=only, jobs=args.jobs, label="subset",
                                                    matrix_file=matrix_file)
                        busy = busy_since(before)
                    else:
                        sides[side] = builtin_asv(work, checkout, subset, only, matrix,
                                                  cold=args.builtin_cold)
                ratios.append(sides["theirs"] / sides["ours"])
                rounds.append(f"{'' if args.rounds == 1 else f'round {i + 1}: '}side by side, {len(subset)} envs, "
                              f"cases {only or 'all'}, both {state}: nox -s matrix {sides['ours']:.1f} s"
                              f"{'' if busy is None else f' ({busy:.0%} of {os.cpu_count()} CPUs busy)'}, asv "
                              f"built-in virtualenv matrix {sides['theirs']:.1f} s: ratio {ratios[-1]:.2f}x")
                if args.rounds > 1:  # progress only: the figures come once every round has succeeded
                    print(f"round {i + 1} of {args.rounds} measured", file=sys.stderr, flush=True)
            print("\n".join(rounds))
            if args.rounds > 1:
                print(f"median ratio of {args.rounds} rounds: {statistics.median(ratios):.2f}x "
                      f"({min(ratios):.2f}-{max(ratios):.2f}x)")
        except RunFailed as e:
            print(f"FAILED, no ratio: {e}")
            failed.append("builtin")
    if failed:
        print(f"bench failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
