"""The project file: graphs and tools a team brings, and every way a bad entry stops start-up, named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatplane.agent import ProductionAgent
from chatplane.agents.project import load_project
from chatplane.errors import ConfigError
from tests.conftest import make_settings

DEMO = Path(__file__).parent.parent / "projects" / "demo"


def _project(tmp_path: Path, graphs: dict, name: str = "chatplane.json", **extra: object) -> str:
    (tmp_path / name).write_text(json.dumps({"graphs": graphs, **extra}))
    return str(tmp_path / name)


def test_the_demo_project_loads_beside_the_built_in_agents() -> None:
    project = load_project(str(DEMO / "chatplane.json"))
    assert [g.graph_id for g in project.graphs] == [
        "chat", "react", "multi", "support", "counter", "greeter", "approval", "steps", "helpdesk"
    ]  # fmt: skip
    assert [tool.__name__ for tool in project.tools] == ["lookup_order"]
    assert project.graphs[3].description == "Answers support questions"


@pytest.mark.parametrize(
    ("graphs", "files", "expected"),
    [
        ({"g": "./missing.py:graph"}, {}, "graph 'g' (./missing.py:graph): the file './missing.py' does not exist"),
        ({"g": "./mod.py:nope"}, {"mod.py": "graph = 1\n"}, "graph 'g' (./mod.py:nope): './mod.py' has no attribute"),
        ({"g": "./mod.py:graph"}, {"mod.py": "graph = 1\n"}, "graph 'g' (./mod.py:graph) is a int: not a graph"),
        (
            {"g": "./mod.py:graph"},
            {"mod.py": "raise RuntimeError('secret')\n"},
            "importing it failed with RuntimeError",
        ),
        ({"g": "./mod.py:graph"}, {"mod.py": "def (:\n"}, "importing it failed with SyntaxError (line 1)"),
        ({"g": "no_such_pkg.mod:graph"}, {}, "no module named 'no_such_pkg'"),
        ({"g": "graph"}, {}, 'give "path/to/file.py:attribute"'),
        ({"chat": "./mod.py:graph"}, {"mod.py": "graph = 1\n"}, "graph 'chat' is defined twice"),
    ],
)
async def test_a_bad_entry_stops_start_up_naming_it(tmp_path: Path, graphs: dict, files: dict, expected: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    path = _project(tmp_path, graphs)
    with pytest.raises(ConfigError) as caught:
        async with ProductionAgent(settings=make_settings(config_file=path)):
            pass
    assert expected in caught.value.message
    assert "secret" not in caught.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "cannot be read (line 1"),
        ("[]", "must hold a JSON object"),
        ('{"graphs": {}}', "`graphs` must be an object naming at least one graph"),
        ('{"graphs": {"g": "./x.py:g"}, "python_version": "3.11"}', "unknown key 'python_version'"),
    ],
)
def test_a_bad_file_is_named(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "chatplane.json").write_text(text)
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace("[", r"\[")):
        load_project(str(tmp_path / "chatplane.json"))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_project(str(tmp_path / "nope.json"))


def test_a_langgraph_json_is_read_with_its_own_keys(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text(
        "from langgraph.graph import StateGraph, MessagesState, START\n"
        "def echo(state):\n    return {}\n"
        "graph = StateGraph(MessagesState).add_node('echo', echo).add_edge(START, 'echo').compile()\n"
    )
    path = _project(tmp_path, {"agent": "./agent.py:graph"}, "langgraph.json", python_version="3.11", env={"X_Y": "1"})
    project = load_project(path)
    assert project.graphs[-1].graph_id == "agent"


async def test_a_factory_that_fails_or_returns_no_graph_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text(
        "def broken(config):\n    raise ValueError('x')\ndef nothing(config):\n    return 3\n"
    )
    for attr, expected in (("broken", "the factory failed with ValueError"), ("nothing", "returned int, not a graph")):
        path = _project(tmp_path, {"g": f"./f.py:{attr}"})
        with pytest.raises(ConfigError, match=expected):
            async with ProductionAgent(settings=make_settings(config_file=path)):
                pass


async def test_a_tool_without_a_docstring_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("def mystery(x: str) -> str:\n    return x\n")
    path = _project(tmp_path, {"g": "chatplane.agents.chat:AGENT"}, tools=["./t.py:mystery"])
    with pytest.raises(ConfigError, match="needs a docstring"):
        async with ProductionAgent(settings=make_settings(config_file=path)):
            pass
