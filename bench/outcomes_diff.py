"""Cell-for-cell outcome differences between two results directories: whether a change of the harness changed
what it records.

    python bench/outcomes_diff.py RESULTS_A RESULTS_B [--root-causes]

Each complete outcome sidecar (``<machine>/*.outcomes``) of A is matched with B's of the same env id (the newest
fingerprint of each); every cell is compared by outcome, expectation and surprise, and with ``--root-causes`` by
its root cause's type and message too (normalised as the harness normalises them: no addresses or task keys).
Prints the differences and a count; exits 0 when there are none, 1 when there are, 2 when the directories hold
no env in common (nothing compared proves nothing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from picklematrix import sidecar  # noqa: E402


def records(results: Path) -> dict:
    """{env id: {cell key: cell}} of the complete sidecars of ``results`` (the newest one of an env wins)."""
    found = {}
    for path in sorted(Path(results).glob(f"*/*{sidecar.SUFFIX}"), key=lambda p: p.stat().st_mtime):
        try:
            sc = sidecar.read(path)
        except sidecar.SidecarError as e:
            print(f"warning: {e}", file=sys.stderr)
            continue
        if sc.complete and sc.head.get("env_id"):
            found[f"{path.parent.name}/{sc.head['env_id']}"] = {sidecar.cell_key(c): c for c in sc.cells}
    return found


def view(cell: dict, root_causes: bool) -> tuple:
    rc = cell.get("root_cause") or {}
    out = (cell["outcome"], cell.get("expected"), bool(cell.get("surprise")))
    return out + ((rc.get("type"), rc.get("message")) if root_causes else ())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--root-causes", action="store_true", help="compare root causes too")
    args = p.parse_args(argv)
    a, b = records(args.a), records(args.b)
    common = sorted(set(a) & set(b))
    if not common:
        print(f"no env in common between {args.a} ({len(a)} envs) and {args.b} ({len(b)} envs)", file=sys.stderr)
        return 2
    differences = cells = 0
    for env in common:
        for key in sorted(set(a[env]) | set(b[env])):
            cells += 1
            x, y = a[env].get(key), b[env].get(key)
            vx = view(x, args.root_causes) if x else None
            vy = view(y, args.root_causes) if y else None
            if vx != vy:
                differences += 1
                print(f"{env} {key}:\n    A {vx}\n    B {vy}")
    for env in sorted(set(a) ^ set(b)):
        print(f"only in {'A' if env in a else 'B'}: {env}")
    print(f"{len(common)} envs, {cells} cells compared: {differences} difference(s)")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
