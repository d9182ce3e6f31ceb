"""Measures the import structure of the harness package (issue 22's before/after counts).

Run from the repository root: python tools/import_scan.py [package_dir]
Counts: modules in the largest import cycle (all imports, and module-level imports only), function-local harness
imports (total and outside cli/), import-by-string targets (lazy("harness...")), places that compare a backend
name, and the largest functions. An ast scan only: nothing of the package is imported.
"""
from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BACKEND_TEST = re.compile(r"""backend\w*\s*(==|!=|\bin\b)\s*[("']""")
LAZY_TARGET = re.compile(r"""lazy\(\s*["'](harness[^"']*)["']""")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    local: bool  # inside a function body
    line: int


def module_names(root: Path) -> dict[str, Path]:
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def edges(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Edge]:
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def visit(node: ast.AST, local: bool) -> Iterator[Edge]:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "harness" and (t := resolve(alias.name, modules)):
                        yield Edge(module, t, local, child.lineno)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                if base.split(".")[0] != "harness":
                    continue
                for alias in child.names:
                    t = resolve(f"{base}.{alias.name}", modules)
                    if t:
                        yield Edge(module, t, local, child.lineno)
            yield from visit(child, inner)

    yield from visit(tree, False)


def largest_scc(graph: dict[str, set[str]]) -> list[str]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    best: list[str] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v: str) -> None:
        nonlocal best
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
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
            if len(component) > len(best):
                best = sorted(component)

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return best


def functions(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.end_lineno - node.lineno + 1, node.name


def main(root: Path) -> None:
    modules = module_names(root)
    all_edges = [e for m, p in modules.items() for e in edges(m, p, modules) if e.source != e.target]
    for label, chosen in (("all imports", all_edges), ("module-level imports only", [e for e in all_edges if not e.local])):
        graph: dict[str, set[str]] = {m: set() for m in modules}
        for e in chosen:
            graph[e.source].add(e.target)
        cycle = largest_scc(graph)
        print(f"largest import cycle ({label}): {len(cycle)} modules")
        print("  " + " ".join(cycle))
    local = [e for e in all_edges if e.local]
    outside_cli = [e for e in local if not e.source.startswith("harness.cli")]
    statements = {(e.source, e.line) for e in local}
    statements_outside = {(e.source, e.line) for e in outside_cli}
    print(f"function-local harness import statements: {len(statements)} (outside cli/: {len(statements_outside)}); "
          f"imported names: {len(local)} (outside cli/: {len(outside_cli)})")
    for e in outside_cli:
        print(f"  {e.source}:{e.line} -> {e.target}")
    lazies = []
    backend_tests = []
    sizes = []
    for m, p in modules.items():
        text = p.read_text(encoding="utf-8")
        lazies += [(m, t) for t in LAZY_TARGET.findall(text)]
        for n, line in enumerate(text.splitlines(), 1):
            if BACKEND_TEST.search(line):
                backend_tests.append(f"{p.relative_to(root.parent)}:{n}")
        sizes += [(lines, f"{m}.{name}") for lines, name in functions(p)]
    print(f"import-by-string targets: {len(lazies)} ({len(set(t for _, t in lazies))} distinct)")
    for m, t in lazies:
        print(f"  {m}: {t}")
    print(f"places that test a backend name: {len(backend_tests)}")
    print("  " + " ".join(backend_tests))
    print(f"modules: {len(modules)}; largest functions (lines):")
    for lines, name in sorted(sizes, reverse=True)[:8]:
        print(f"  {lines:4d} {name}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "harness").resolve())
