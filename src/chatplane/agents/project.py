"""A project file (``chatplane.json``, or LangGraph's ``langgraph.json``): the graphs a server serves, and its tools.

::

    {
      "dependencies": ["."],                      # folders put on the import path (relative to the file)
      "graphs": {
        "support": "./agent.py:graph",            # a file and an attribute ...
        "triage": {"path": "my_pkg.triage:make_graph", "description": "Sorts tickets"}   # ... or a module
      },
      "env": {"SUPPORT_TEAM": "tier-1"} | "./.env",  # set for the graphs (the process's own environment wins)
      "tools": ["./tools.py:lookup_order"]        # LangChain tools or plain functions, for the built-in agents
    }

An attribute is a compiled graph, a ``StateGraph``, a factory (sync or async) that takes the run's config and
returns either, or a chatplane agent kind (``chatplane.agents.AgentKind`` — the built-in agents are registered this
way, from ``BUILTIN_GRAPHS``). ``load_project`` imports everything once, at start-up; any bad entry stops start-up
with a ``ConfigError`` naming the entry and what is wrong with it. ``langgraph.json`` keys chatplane does not use
(``python_version``, ``dockerfile_lines`` …) are ignored there; in a ``chatplane.json`` they are an error.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from chatplane.errors import ConfigError

BUILTIN_GRAPHS: dict[str, str] = {
    "chat": "chatplane.agents.chat:AGENT",
    "react": "chatplane.agents.react:AGENT",
    "multi": "chatplane.agents.multi:AGENT",
}
"""The built-in agents, as project-file entries: loaded like any project's graphs."""

_KEYS = {"graphs", "dependencies", "env", "tools", "description"}
_LANGGRAPH_ONLY = {
    "python_version", "node_version", "pip_config_file", "pip_installer", "dockerfile_lines", "image_distro",
    "store", "checkpointer", "http", "auth", "ui", "ui_config", "keep_pkg_tools", "base_image", "api_version",
    "webhooks", "encryption",
}  # fmt: skip


@dataclass(frozen=True)
class GraphSource:
    """One ``graphs`` entry: its id, where it comes from, and what that attribute is."""

    graph_id: str
    source: str
    target: Any
    description: str = ""


@dataclass
class Project:
    """What a project file names, imported."""

    graphs: list[GraphSource] = field(default_factory=list)
    tools: list[Any] = field(default_factory=list)
    path: Path | None = None


def load_project(path: str | None, *, builtin: dict[str, str] = BUILTIN_GRAPHS) -> Project:
    """The built-in graphs, then those of the project file at ``path`` (None: the built-in ones only)."""
    project = Project(graphs=[_graph(graph_id, spec, Path.cwd()) for graph_id, spec in builtin.items()])
    if path is None:
        return project
    file = Path(path).expanduser().resolve()
    raw = _read(file)
    base = file.parent
    unknown = set(raw) - _KEYS - (_LANGGRAPH_ONLY if file.name == "langgraph.json" else set())
    if unknown:
        raise ConfigError(f"{file.name}: unknown key {sorted(unknown)[0]!r}; a project file takes {sorted(_KEYS)}.")
    for folder in _strings(raw.get("dependencies", []), f"{file.name}: `dependencies`"):
        resolved = str((base / folder).resolve()) if not _is_package_name(folder) else None
        if resolved is not None and resolved not in sys.path:
            sys.path.insert(0, resolved)
    _set_env(raw.get("env"), base, file.name)
    graphs = raw.get("graphs", {})
    if not isinstance(graphs, dict) or not graphs:
        raise ConfigError(f"{file.name}: `graphs` must be an object naming at least one graph.")
    for graph_id, spec in graphs.items():
        if any(g.graph_id == graph_id for g in project.graphs):
            raise ConfigError(f"{file.name}: graph {graph_id!r} is defined twice (or is a built-in agent's id).")
        project.graphs.append(_graph(graph_id, spec, base))
    for spec in _strings(raw.get("tools", []), f"{file.name}: `tools`"):
        project.tools.append(_load_attr(spec, base, f"tool {spec!r}"))
    project.path = file
    return project


def _read(file: Path) -> dict[str, Any]:
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Project file {str(file)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise ConfigError(f"Project file {file.name!r} cannot be read ({detail}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"Project file {file.name!r} must hold a JSON object.")
    return raw


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of strings.")
    return list(value)


def _is_package_name(entry: str) -> bool:
    """``dependencies`` may name pip requirements too (LangGraph's format): chatplane installs nothing, and
    only puts folders on the import path."""
    return not entry.startswith((".", "/", "~"))


def _set_env(env: Any, base: Path, name: str) -> None:
    if env is None:
        return
    if isinstance(env, str):
        env = _dotenv(base / env, name)
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ConfigError(f"{name}: `env` must be an object of strings or the path of a .env file.")
    for key, value in env.items():
        os.environ.setdefault(key, value)


def _dotenv(file: Path, name: str) -> dict[str, str]:
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError:
        raise ConfigError(f"{name}: the env file {file.name!r} cannot be read.") from None
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.lstrip().startswith("#"))
    return {key.strip().removeprefix("export ").strip(): value.strip().strip("'\"") for key, value in pairs}


def _graph(graph_id: str, spec: Any, base: Path) -> GraphSource:
    if not isinstance(graph_id, str) or not graph_id or len(graph_id) > 64 or not graph_id.isascii():
        raise ConfigError(f"Graph id {graph_id!r} must be a short ASCII name.")
    description = ""
    if isinstance(spec, dict):
        description = str(spec.get("description") or "")
        spec = spec.get("path")
    if not isinstance(spec, str):
        raise ConfigError(f'Graph {graph_id!r}: give "path/to/file.py:attribute" or "package.module:attribute".')
    target = _load_attr(spec, base, f"graph {graph_id!r} ({spec})")
    return GraphSource(graph_id, spec, target, description or _docstring(target))


def _docstring(target: Any) -> str:
    description = getattr(target, "description", None)
    if isinstance(description, str):
        return description
    return ""


def _load_attr(spec: str, base: Path, what: str) -> Any:
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise ConfigError(f'{what}: give "path/to/file.py:attribute" or "package.module:attribute".')
    module = _import(where, base, what)
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{what}: {where!r} has no attribute {attr!r}.")
        target = getattr(target, part)
    return target


def _import(where: str, base: Path, what: str) -> ModuleType:
    loader: Callable[[], ModuleType]
    if where.endswith(".py") or "/" in where:
        file = (base / where).resolve()
        if not file.is_file():
            raise ConfigError(f"{what}: the file {where!r} does not exist.")
        loader = lambda: _import_file(file)  # noqa: E731
    else:
        loader = lambda: importlib.import_module(where)  # noqa: E731
    try:
        return loader()
    except ConfigError:
        raise
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{what}: importing it failed: no module named {exc.name!r}.") from None
    except (Exception, SystemExit) as exc:  # whatever the module raises as it is imported (SyntaxError too)
        line = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) else ""
        raise ConfigError(f"{what}: importing it failed with {type(exc).__name__}{line}.") from None


def _import_file(file: Path) -> ModuleType:
    name = f"chatplane_project.{file.stem}_{abs(hash(str(file))):x}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{file.name}: not a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
