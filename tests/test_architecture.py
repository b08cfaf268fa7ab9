"""The shape of the package: no import cycles, and the web framework only in the service (and the CLI that serves it).

Every ``import`` statement of every module under ``src/chatplane`` counts, wherever it is written: at the top, inside
a function (a lazy import is still a dependency) or under ``if TYPE_CHECKING:`` (a cycle hidden there is still a
cycle in the design). The sources are parsed, not imported, so the test sees what is written, not what happens to
run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "chatplane"

# Strongly connected sets of modules that import each other today, each with why it is tolerated. Empty: a cycle
# found by the test is a new one. (TODO: should the renovation of issue #21 have to list one here, it removes it.)
KNOWN_MODULE_CYCLES: dict[frozenset[str], str] = {}

# The same, between the package's top-level parts (``chatplane.runs``, ``chatplane.observability``, the root
# ``chatplane`` facade …), where a cycle is a layering fault even when no two modules import each other: issue #21's
# ``observability`` → ``agent`` → ``failures`` → ``observability`` was one.
KNOWN_PART_CYCLES: dict[frozenset[str], str] = {}

WEB_FRAMEWORKS = ("fastapi", "starlette", "sse_starlette")
# Where the web framework may be imported: the service, and the CLI (``chatplane serve`` starts it).
MAY_IMPORT_THE_WEB = ("chatplane.service", "chatplane.cli")
# Modules outside those that import it today. Empty. (TODO: issue #21's renovation removes any listed here.)
KNOWN_WEB_IMPORTS: frozenset[str] = frozenset()
# What observability may import of chatplane: it observes the rest only through what it is handed.
OBSERVABILITY_MAY_IMPORT = ("chatplane.observability", "chatplane.config", "chatplane.errors")


@dataclass(frozen=True)
class Import:
    module: str
    """The importing module."""
    target: str
    """What it imports: a chatplane module, or an outside top-level name (``fastapi``)."""
    line: int


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name → file of every module (a package by its ``__init__.py``)."""
    found: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _known(name: str, known: dict[str, Path]) -> str | None:
    """``name`` if it is a chatplane module, else its nearest enclosing one (``chatplane.x.attr`` → ``chatplane.x``)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _resolve(module: str, target: str, known: dict[str, Path]) -> str:
    """An imported name → the chatplane module it executes, or the outside top-level package."""
    if target == "chatplane" or target.startswith("chatplane."):
        resolved = _known(target, known)
        assert resolved is not None, f"{module} imports {target}, which is not under src/chatplane"
        return resolved
    return target.partition(".")[0]


def imports(known: dict[str, Path]) -> Iterator[Import]:
    """Every import statement of the ``known`` modules, resolved (relative imports too)."""
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module, _resolve(module, alias.name, known), node.lineno)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # from . import x / from ..y import z
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    # ``from chatplane.x import y``: the module ``chatplane.x.y`` if there is one, else ``chatplane.x``
                    target = submodule if submodule in known else base
                    yield Import(module, _resolve(module, target, known), node.lineno)


def module_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the chatplane modules it imports (a package's ``__init__`` importing its submodules included)."""
    known = modules(package)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for found in imports(known):
        if found.target in known and found.target != found.module:
            graph[found.module].add(found.target)
    return graph


def part_of(module: str) -> str:
    """``chatplane.runs.manager`` → ``chatplane.runs``; the root ``chatplane`` is a part of its own."""
    return ".".join(module.split(".")[:2])


def part_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = {part_of(name): set() for name in graph}
    for name, targets in graph.items():
        parts[part_of(name)].update(part_of(t) for t in targets if part_of(t) != part_of(name))
    return parts


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected sets of more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def a_cycle_through(component: frozenset[str], graph: dict[str, set[str]]) -> list[str]:
    """One closed path through ``component``, to print (``a → b → a``)."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:  # breadth-first: the shortest way back to the start
        node = queue.pop(0)
        for target in sorted(graph[node] & component):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"no cycle through {sorted(component)}")


def _check(graph: dict[str, set[str]], known: dict[frozenset[str], str], what: str) -> None:
    found = cycles(graph)
    new = [c for c in found if c not in known]
    gone = [c for c in known if c not in found]
    report = [f"new {what} cycle: " + " → ".join(a_cycle_through(c, graph)) for c in new]
    report += [f"known {what} cycle no longer there (remove it from the list): {sorted(c)}" for c in gone]
    assert not report, "\n".join(report)


def test_the_modules_import_each_other_without_a_cycle() -> None:
    _check(module_graph(), KNOWN_MODULE_CYCLES, "module")


def test_the_parts_of_the_package_import_each_other_without_a_cycle() -> None:
    _check(part_graph(module_graph()), KNOWN_PART_CYCLES, "part")


def test_only_the_service_and_the_cli_import_the_web_framework() -> None:
    outside = {
        f.module: f"{f.module}:{f.line} imports {f.target}"
        for f in imports(modules())
        if f.target in WEB_FRAMEWORKS
        and not any(f.module == allowed or f.module.startswith(allowed + ".") for allowed in MAY_IMPORT_THE_WEB)
    }
    new = sorted(line for module, line in outside.items() if module not in KNOWN_WEB_IMPORTS)
    gone = sorted(KNOWN_WEB_IMPORTS - outside.keys())
    assert not new, "the web framework below the service:\n" + "\n".join(new)
    assert not gone, f"no longer import the web framework (remove them from the list): {gone}"


def test_observability_imports_none_of_what_it_observes() -> None:
    reaches = sorted(
        f"{f.module}:{f.line} imports {f.target}"
        for f in imports(modules())
        if part_of(f.module) == "chatplane.observability"
        and (f.target == "chatplane" or f.target.startswith("chatplane."))
        and not any(f.target == allowed or f.target.startswith(allowed + ".") for allowed in OBSERVABILITY_MAY_IMPORT)
    )
    assert not reaches, "observability reaches into what it observes:\n" + "\n".join(reaches)


def test_the_checks_see_cycles_hidden_in_functions_and_type_checking_blocks(tmp_path) -> None:
    """The walker itself: a cycle closed by a lazy import and one behind ``TYPE_CHECKING`` are both found, relative
    imports resolve, and ``from package import submodule`` is an edge to the submodule."""
    root = tmp_path / "chatplane"
    (root / "low").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "low" / "__init__.py").write_text("from . import signals\n")
    (root / "low" / "signals.py").write_text("def f():\n    from chatplane.high import thing\n")
    (root / "high.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .low import signals\nimport fastapi\n"
    )
    graph = module_graph(root)
    assert graph["chatplane.low"] == {"chatplane.low.signals"}
    assert graph["chatplane.high"] == {"chatplane.low.signals"}
    assert cycles(graph) == [frozenset({"chatplane.high", "chatplane.low.signals"})]
    assert a_cycle_through(cycles(graph)[0], graph) == ["chatplane.high", "chatplane.low.signals", "chatplane.high"]
    web = [(f.module, f.target) for f in imports(modules(root)) if f.target == "fastapi"]
    assert web == [("chatplane.high", "fastapi")]


# --- docs/architecture.md's layout is the tree -----------------------------------------------------------------------
ROOT = PACKAGE.parents[1]
_PATH_TOKEN = re.compile(r"^[\w./-]+(/|\.\w+)$")


def documented_paths(doc: Path = ROOT / "docs" / "architecture.md") -> list[str]:
    """The paths of the ``## Layout`` section's tree: two spaces of indent a level, a line's leading tokens that look
    like paths (``name/`` or ``name.ext``), the rest of the line a description."""
    text = doc.read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    paths: list[str] = []
    parents: list[str] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        del parents[depth:]
        for token in line.split():
            if not _PATH_TOKEN.match(token):
                break
            paths.append("".join(parents) + token)
            if token.endswith("/"):
                parents.append(token)
    return paths


def test_the_documented_layout_exists() -> None:
    paths = documented_paths()
    assert "src/chatplane/storage/turns.py" in paths  # the parser reads the tree, not nothing
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert missing == [], f"docs/architecture.md lists paths that do not exist: {missing}"


def test_every_package_of_chatplane_is_documented() -> None:
    documented = set(documented_paths())
    packages = sorted(
        f"{path.parent.relative_to(ROOT).as_posix()}/"
        for path in PACKAGE.rglob("__init__.py")
        if path.parent != PACKAGE and "routes" not in path.parent.parts
    )
    assert [p for p in packages if p not in documented] == []


# --- small enough to read at once ----------------------------------------------------------------------------------
MAX_MODULE_LINES = 399
MAX_FUNCTION_LINES = 60


def test_modules_and_functions_are_small_enough_to_read_at_once() -> None:
    too_long: list[str] = []
    for name, path in modules().items():
        source = path.read_text(encoding="utf-8")
        if source.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert too_long == []
