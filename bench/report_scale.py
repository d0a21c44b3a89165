"""The report at full-profile size: 120 envs' result files generated from one real recorded env, the report
built over them, and its matrix page opened in a real browser.

    .nox/_nox/bin/python bench/report_scale.py [--seed RESULTS_DIR] [--envs 120] [--cases N] [--keep DIR]
                                               [--cprofile FILE] [--report-target 30] [--page-target 3]
                                               [--checkout DIR]   (another checkout's report, side by side)

The seed is a results directory holding at least one real recorded env (an asv result and its outcome sidecar;
default: the checkout's ``results/``; the env with the most cells is used). Each env of matrix.toml's ``full``
profile gets a copy of it in the real formats, rewritten: its versions, env id and asv env name; its timings
scaled by a factor of its own; about 3% of its cells given another outcome (with the root cause of a real seed
cell of that outcome, the surprise flag and asv's outcome code and timing agreeing), so that envs differ as real
ones do. ``--cases N`` repeats the seed's cases under new names up to N cases (a seed recorded with ``--only``).

Then it times ``picklematrix report`` (in the asv tools venv, as ``./nox -s report`` runs it; web assets from the
warm cache) and the matrix page's load in headless chromium (``/usr/bin/chromium`` or ``PICKLEMATRIX_CHROMIUM``,
driven over the DevTools protocol on a pipe: standard library only): navigation start to the load event, and to
the page's own script being done (its ``pm-ready`` performance mark). Prints the figures, and whether each meets
its target; exits 1 when a target is missed, and 2, printing no figure, when a step failed.
"""

from __future__ import annotations

import argparse
import ast
import copy
import functools
import http.server
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from picklematrix.envs.ids import asv_env_name  # noqa: E402
from picklematrix.envs.matrix import load_matrix  # noqa: E402
from picklematrix.envs.venvs import find_chromium, tools_python  # noqa: E402
from picklematrix.outcomes import OUTCOME_CODES, PASS  # noqa: E402
from picklematrix.run.selection import COMPUTE, OUTCOME  # noqa: E402

FLIP_SHARE = 0.03  # the share of an env's cells given another outcome


class StepFailed(Exception):
    """A step of the bench failed: no figure is printed."""


# --------------------------------------------------------------------------- generating the results


def find_seed(seed: Path) -> tuple[Path, Path]:
    """(asv result, sidecar) of the recorded env with the most cells under ``seed``."""
    best = None
    for sidecar in seed.glob("*/*.outcomes"):
        result = sidecar.with_suffix(".json")
        if not result.exists() or not (sidecar.parent / "machine.json").exists():
            continue
        data = json.loads(sidecar.read_text())
        if data.get("complete") and (best is None or len(data["cells"]) > best[0]):
            best = (len(data["cells"]), result, sidecar)
    if best is None:
        raise StepFailed(f"{seed}: no recorded env (a <machine>/<commit>-<env>.json with its .outcomes and "
                         "machine.json); record one with `./nox -s \"matrix(<baseline>)\"` or pass --seed DIR")
    return best[1], best[2]


def _per_combo(row: list, columns: list, n: int) -> dict:
    """{column: values} of the columns of an asv result row that hold one value per parameter combination."""
    return {c: v for c, v in zip(columns, row) if isinstance(v, list) and c != "params" and len(v) == n}


def generate(seed: Path, dest: Path, n_envs: int, n_cases: int | None) -> dict:
    """Write ``n_envs`` envs' results into ``dest`` (real formats) from the seed; returns what was written."""
    result_path, sidecar_path = find_seed(seed)
    machine = sidecar_path.parent.name
    asv = json.loads(result_path.read_text())
    side = json.loads(sidecar_path.read_text())
    commit = asv["commit_hash"]
    envs = load_matrix(ROOT / "matrix.toml").profile("full").envs
    envs = [envs[i % len(envs)] for i in range(n_envs)]

    cases = sorted({f"{c['family']}/{c['case']}" for c in side["cells"]})
    n_cases = n_cases or len(cases)
    names = [(cases[i % len(cases)], cases[i % len(cases)] + (f"_x{i // len(cases)}" if i >= len(cases) else ""))
             for i in range(n_cases)]
    by_key = {(f"{c['family']}/{c['case']}", c["method"], c["context"]): c for c in side["cells"]}
    by_outcome: dict = {}
    for c in side["cells"]:
        by_outcome.setdefault(c["outcome"], []).append(c)

    benchmarks = json.loads((seed / "benchmarks.json").read_text())
    rows = {}
    for bench, row in asv["results"].items():
        params = row[asv["result_columns"].index("params")]
        combos = [(a, b, c) for a in params[0] for b in params[1] for c in params[2]]
        rows[bench] = (params, combos, _per_combo(row, asv["result_columns"], len(combos)))
    new_cases = [repr(new) for _, new in names]
    methods, contexts = ([ast.literal_eval(v) for v in vs] for vs in rows[OUTCOME][0][1:])
    for bench in rows:
        if bench in benchmarks:
            benchmarks[bench]["params"] = [new_cases, *rows[bench][0][1:]]
    (dest / machine).mkdir(parents=True, exist_ok=True)
    (dest / "benchmarks.json").write_text(json.dumps(benchmarks, indent=1))
    shutil.copy2(sidecar_path.parent / "machine.json", dest / machine / "machine.json")

    flipped = 0
    seed_minor = ".".join(side["env"]["python"].split(".")[:2])
    for env in envs:
        rng = random.Random(env.env_id)
        python = side["env"]["python"] if env.python == seed_minor else f"{env.python}.0"
        versions = {"cloudpickle": env.cloudpickle, "dask": env.dask, "distributed": env.dask,
                    "pydantic": env.pydantic if env.pydantic != "absent" else None}
        env_name = asv_env_name(python, versions)
        scale = rng.uniform(0.8, 1.25)
        cells, outcome_of = [], {}
        for old, new in names:
            family, _, case = new.partition("/")
            for method in methods:
                for context in contexts:
                    src = by_key.get((old, method, context))
                    if src is None:
                        continue
                    cell = copy.deepcopy(src)
                    cell["family"], cell["case"] = family, case
                    if rng.random() < FLIP_SHARE:
                        other = rng.choice([o for o in by_outcome if o != cell["outcome"]])
                        donor = rng.choice(by_outcome[other])
                        for k in ("outcome", "root_cause", "stage", "detail", "samples", "seconds"):
                            cell[k] = copy.deepcopy(donor.get(k))
                        cell["surprise"] = cell["outcome"] != cell["expected"]
                        flipped += 1
                    outcome_of[(new, method, context)] = cell["outcome"]
                    cells.append(cell)
        sc = dict(side, env={"python": python, "versions": versions}, env_id=env.env_id, cells=cells)
        data = copy.deepcopy(asv)
        data["env_name"] = env_name
        data["python"] = python
        data["params"].update({"python": python, **{k: v or "absent" for k, v in versions.items()}})
        data["requirements"] = {k: v or "absent" for k, v in versions.items()}
        columns = asv["result_columns"]
        for bench, (params, combos, per) in rows.items():
            index = {combo: i for i, combo in enumerate(combos)}
            out = {c: [] for c in per}
            for old, new in names:
                for m in params[1]:
                    for x in params[2]:
                        i = index.get((repr(old), m, x))
                        outcome = outcome_of.get((new, ast.literal_eval(m), ast.literal_eval(x)))
                        for c, values in per.items():
                            v = values[i] if i is not None else None
                            if bench == OUTCOME and c == "result" and outcome is not None:
                                v = OUTCOME_CODES[outcome]
                            elif bench == COMPUTE and outcome != PASS:
                                v = None  # asv times passing cells only
                            elif bench == COMPUTE and isinstance(v, (int, float)) and not math.isnan(v) \
                                    and c not in ("stats_number", "stats_repeat"):
                                v = v * scale
                            out[c].append(v)
            row = list(data["results"][bench])
            row[columns.index("params")] = [new_cases, *params[1:]]
            for c, values in out.items():
                row[columns.index(c)] = values
            data["results"][bench] = row
        stem = f"{commit[:8]}-{env_name}"
        (dest / machine / f"{stem}.json").write_text(json.dumps(data))
        (dest / machine / f"{stem}.outcomes").write_text(json.dumps(sc))
    return {"envs": len(envs), "cases": n_cases, "cells": len(cells), "flipped": flipped, "seed": str(sidecar_path)}


# --------------------------------------------------------------------------- the browser


class Chromium:
    """Headless chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages
    separated by NUL on fds 3 and 4), so the bench needs no websocket client."""

    def __init__(self, binary: str, profile: Path):
        self.to_browser_r, self.to_browser_w = os.pipe()
        self.from_browser_r, self.from_browser_w = os.pipe()

        def fds():
            os.dup2(self.to_browser_r, 3)
            os.dup2(self.from_browser_w, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--window-size=1400,1000",
             f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(self.to_browser_r)
        os.close(self.from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.events: list = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)
        self.call("Performance.enable", session=True)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise StepFailed("chromium did not answer over the DevTools pipe")
            chunk = os.read(self.from_browser_r, 1 << 20)
            if not chunk:
                raise StepFailed("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self.to_browser_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read(deadline)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise StepFailed(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.events):
                if msg.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def thread_time(self) -> float:
        """The CPU time of the page's main thread so far (DevTools' ThreadTime), in seconds."""
        metrics = self.call("Performance.getMetrics", session=True)["metrics"]
        return next(m["value"] for m in metrics if m["name"] == "ThreadTime")

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise StepFailed(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self.to_browser_w, self.from_browser_r):
            try:
                os.close(fd)
            except OSError:
                pass


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def page_load(site: Path, page: str, runs: int, older: bool = False) -> dict:
    """The page's load in headless chromium, served from 127.0.0.1: the slowest of ``runs`` fresh loads."""
    binary = find_chromium()
    if binary is None:
        raise StepFailed("no chromium (set PICKLEMATRIX_CHROMIUM, or install Debian's chromium)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{page}"
    figures = []
    with tempfile.TemporaryDirectory(prefix="pm-bench-chromium-") as profile:
        browser = Chromium(binary, Path(profile))
        try:
            for _ in range(runs):
                browser.call("Page.navigate", session=True, url="about:blank")
                browser.wait_event("Page.loadEventFired")
                browser.call("Network.setCacheDisabled", session=True, cacheDisabled=True)
                cpu0 = browser.thread_time()
                t0 = time.monotonic()
                browser.call("Page.navigate", session=True, url=url)
                browser.wait_event("Page.loadEventFired")
                wall = time.monotonic() - t0
                timing = browser.js("""(() => {
                    const nav = performance.getEntriesByType('navigation')[0];
                    const ready = performance.getEntriesByName('pm-ready');
                    return {load: nav.loadEventEnd, dom: nav.domContentLoadedEventEnd,
                            ready: ready.length ? ready[0].startTime : null,
                            rows: document.querySelectorAll('tr.case-row').length,
                            envs: document.querySelectorAll('th.env').length,
                            bytes: nav.transferSize || nav.encodedBodySize};
                })()""")
                if timing["ready"] is None:
                    if not older:
                        raise StepFailed(f"{url}: the page's script never marked pm-ready (a script error?)")
                    timing["ready"] = timing["load"]  # a page from before the mark: its load event
                timing["wall"] = wall
                timing["cpu"] = browser.thread_time() - cpu0
                figures.append(timing)
        finally:
            browser.close()
            server.shutdown()
            server.server_close()
    return max(figures, key=lambda f: max(f["load"], f["ready"]))


# --------------------------------------------------------------------------- the report


def build_report(results: Path, html: Path, cprofile: str | None, checkout: Path = ROOT) -> tuple[float, float]:
    """``picklematrix report`` as ``./nox -s report`` runs it: in ``checkout``'s asv tools venv, from ``checkout``."""
    python = tools_python(checkout)
    cmd = [python, *(["-m", "cProfile", "-o", cprofile] if cprofile else []), "-m", "picklematrix", "report",
           "--results", str(results), "--html", str(html), "--checkout", str(checkout)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise StepFailed(f"picklematrix report exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-4000:]}")
    # CPU time (the report and asv publish, its child): steadier than wall time on a shared machine
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=Path, default=ROOT / "results",
                        help="a results directory with a recorded env (default: the checkout's results/)")
    parser.add_argument("--envs", type=int, default=120, help="envs to generate (default 120: the full profile)")
    parser.add_argument("--cases", type=int, default=None, help="cases per env (default: the seed's)")
    parser.add_argument("--keep", type=Path, default=None, help="generate into DIR and keep it")
    parser.add_argument("--cprofile", default=None, metavar="FILE", help="profile the report with cProfile")
    parser.add_argument("--runs", type=int, default=3, help="page loads (the slowest counts; default 3)")
    parser.add_argument("--report-target", type=float, default=30.0)
    parser.add_argument("--page-target", type=float, default=3.0)
    parser.add_argument("--page-only", type=Path, default=None, metavar="HTML_DIR",
                        help="only time the matrix page of an existing site (no generation, no report)")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="time the report of another checkout (an earlier commit, side by side; default this one)")
    args = parser.parse_args(argv)
    if args.page_only:
        try:
            page = page_load(args.page_only, "matrix.html", args.runs, older=True)
        except Exception as e:  # noqa: BLE001 -- as below
            print(f"report_scale: failed: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        print(f"page: load {page['load'] / 1000:.2f} s, DOM ready {page['dom'] / 1000:.2f} s, script done "
              f"{page['ready'] / 1000:.2f} s, main thread {page['cpu']:.2f} s of CPU ({page['rows']} rows x "
              f"{page['envs']} envs)")
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="pm-report-scale-"))
    try:
        results, html = work / "results", work / "html"
        shutil.rmtree(results, ignore_errors=True)
        shutil.rmtree(html, ignore_errors=True)
        t0 = time.perf_counter()
        made = generate(args.seed, results, args.envs, args.cases)
        generated = time.perf_counter() - t0
        report_s, report_cpu = build_report(results, html, args.cprofile, args.checkout.resolve())
        table = json.loads((results / "table.json").read_text())
        if len([e for e in table["environments"] if e["kind"] == "result"]) != made["envs"]:
            raise StepFailed(f"the report shows {len(table['environments'])} envs, {made['envs']} were generated")
        page = page_load(html, "matrix.html", args.runs, older=args.checkout.resolve() != ROOT)
        page_mb = (html / "matrix.html").stat().st_size / 1e6
        if page["rows"] != made["cases"] or page["envs"] != made["envs"]:
            raise StepFailed(f"the page shows {page['rows']} cases x {page['envs']} envs, expected "
                             f"{made['cases']} x {made['envs']}")
    except Exception as e:  # noqa: BLE001 -- any step that fails: no figure, a status of its own
        print(f"report_scale: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    opens = max(page["load"], page["ready"]) / 1000
    print(f"generated: {made['envs']} envs x {made['cases']} cases ({made['cells']} cells each; {made['flipped']} "
          f"cells given another outcome) from {made['seed']} in {generated:.1f} s")
    print(f"report:    {report_s:.1f} s ({report_cpu:.1f} s of CPU; target <= {args.report_target:g} s): "
          f"{'ok' if report_s <= args.report_target else 'MISSED'}")
    print(f"page:      opens in {opens:.2f} s (load event {page['load'] / 1000:.2f} s, DOM ready "
          f"{page['dom'] / 1000:.2f} s, script done {page['ready'] / 1000:.2f} s; main thread {page['cpu']:.2f} s of "
          f"CPU; slowest of {args.runs}; "
          f"target <= {args.page_target:g} s): {'ok' if opens <= args.page_target else 'MISSED'}"
          + f"; matrix.html {page_mb:.1f} MB")
    return 0 if report_s <= args.report_target and opens <= args.page_target else 1


if __name__ == "__main__":
    sys.exit(main())
