"""The package's layout: no import cycles (imports inside functions included), no private names across modules,
and every module listed in docs/architecture.md under its package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "picklematrix"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


NAMED = re.compile(r"^(picklematrix(?:\.\w+)+)(?::\w+)?$")


def imports(name: str, path: Path, known: dict) -> list[tuple[str, str | None, int]]:
    """(module imported, name imported from it or None, line) for every import of the package in ``path``,
    those inside functions included (ast.walk sees every statement), and every module a string names for
    importing later (``"picklematrix.run.command:run"``, a forkserver's preload ``"picklematrix.preload"``)."""
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAMED.match(node.value):
            module = NAMED.match(node.value).group(1)
            if module in known:
                out.append((module, None, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.append((sub, None, node.lineno) if sub in known else (target, a.name, node.lineno))
    return out


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        graph[name] = {m for m, _, _ in imports(name, path, known) if m in known and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one cycle through it."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_one_cycle(graph, set(c)) for c in found]


def _one_cycle(graph, component: set) -> list[str]:
    """A path start -> ... -> start inside ``component``: what a reader follows to see the cycle."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return sorted(component)


def test_the_import_graph_finds_a_cycle_hidden_in_a_function(tmp_path):
    """The checker itself: a cycle made by an import inside a function is found and named."""
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from picklematrix.b import g\n\ndef f():\n    return g()\n")
    (pkg / "b.py").write_text("def g():\n    from picklematrix import a\n    return a\n")
    known = {module_name_in(tmp_path, p): p for p in pkg.glob("*.py")}
    graph = {n: {m for m, _, _ in imports(n, p, known) if m in known and m != n} for n, p in known.items()}
    assert cycles(graph) == [["picklematrix.a", "picklematrix.b", "picklematrix.a"]]


def module_name_in(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles (move the function to its owner):\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_private_names_across_modules():
    known = modules()
    found = []
    for name, path in known.items():
        module_aliases = {}
        for target, imported, line in imports(name, path, known):
            if imported is not None and imported.startswith("_") and not imported.startswith("__"):
                found.append(f"{path.relative_to(ROOT)}:{line}: imports {imported} from {target}")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
                for a in node.names:
                    if f"{node.module}.{a.name}" in known:
                        module_aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith(PACKAGE + ".") and a.asname:
                        module_aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in module_aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: uses {module_aliases[node.value.id]}."
                             f"{node.attr}")
    assert not found, "private names used across modules (make them public in their owner, or move the code):\n" \
        + "\n".join(found)


ARCHITECTURE = ROOT / "docs" / "architecture.md"


def documented_modules() -> set[str]:
    """The module paths the architecture page's tables name (``run/corpus.py``, ``cli.py``, ...)."""
    text = ARCHITECTURE.read_text()
    return set(re.findall(r"`([a-z_/]+\.py)`", text))


@pytest.mark.parametrize("name", sorted(n for n in modules() if not n.endswith("__main__")))
def test_every_module_is_in_the_architecture_page(name):
    path = modules()[name].relative_to(SRC / PACKAGE).as_posix()
    assert path in documented_modules(), f"{path} is not listed in {ARCHITECTURE.relative_to(ROOT)}"


def test_the_architecture_page_names_only_modules_that_exist():
    known = {p.relative_to(SRC / PACKAGE).as_posix() for p in modules().values()}
    stale = sorted(d for d in documented_modules() if "/" in d or d.endswith(".py")
                   if d not in known and d not in ("noxfile.py", "hatch_build.py", "benchmarks/cells.py"))
    assert not stale, f"{ARCHITECTURE.relative_to(ROOT)} names modules that do not exist: {stale}"


def _defined_names(path: Path) -> set[str]:
    """Names a module defines itself at its top level (not those it imports)."""
    out = set()
    for node in ast.parse(path.read_text()).body:
        targets = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Try):  # try: import tomllib / except: import tomli as tomllib
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    out.update((a.asname or a.name).split(".")[0] for a in sub.names)
        for t in targets:
            out.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    return out


def test_names_are_imported_from_their_owner():
    """``from picklematrix.a import X`` where ``a`` only imported X itself hides who owns X."""
    known = modules()
    found = []
    for name, path in known.items():
        for target, imported, line in imports(name, path, known):
            if imported is None or target not in known or imported == "*":
                continue
            if imported not in _defined_names(known[target]):
                found.append(f"{path.relative_to(ROOT)}:{line}: {imported} is not {target}'s own")
    assert not found, "import these names from the module that defines them:\n" + "\n".join(found)
