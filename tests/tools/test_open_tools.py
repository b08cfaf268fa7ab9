"""open_tools: built-ins plus MCP servers' tools (a real stdio server), and clear start-up failures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chatplane.errors import ConfigError
from chatplane.tools import open_tools
from tests.conftest import make_settings

ECHO_SERVER = Path(__file__).with_name("mcp_echo_server.py")


def echo_server(**extra: object) -> dict[str, object]:
    return {"transport": "stdio", "command": sys.executable, "args": [str(ECHO_SERVER)], **extra}


async def test_builtins_only_by_default() -> None:
    async with open_tools(make_settings()) as tools:
        assert [t.name for t in tools] == ["calculator", "current_time", "search_docs"]


async def test_loads_a_stdio_mcp_server_and_calls_its_tool() -> None:
    async with open_tools(make_settings(mcp_servers={"echo": echo_server()})) as tools:
        by_name = {t.name: t for t in tools}
        assert {"calculator", "echo", "explode"} <= set(by_name)
        result = await by_name["echo"].ainvoke({"text": "hi"})
        assert [block["text"] for block in result] == ["echo: hi"]


async def test_unreachable_server_is_a_config_error_naming_it() -> None:
    missing = {"transport": "stdio", "command": "/nonexistent/mcp-server-secret-token-123", "args": []}
    with pytest.raises(ConfigError) as raised:
        async with open_tools(make_settings(mcp_servers={"ghost": missing})):
            pass
    assert "'ghost'" in raised.value.message
    assert "secret-token" not in raised.value.message
    assert "nonexistent" not in raised.value.message


async def test_unreachable_http_server_is_a_config_error() -> None:
    conn = {"transport": "streamable_http", "url": "http://127.0.0.1:9/mcp"}
    with pytest.raises(ConfigError, match="'web'"):
        async with open_tools(make_settings(mcp_servers={"web": conn}, tool_timeout_s=5)):
            pass


async def test_tool_name_clash_is_a_config_error(tmp_path: Path) -> None:
    clash = tmp_path / "clash_server.py"
    clash.write_text(
        "from mcp.server.fastmcp import FastMCP\n"
        "server = FastMCP('clash', log_level='WARNING')\n"
        "@server.tool()\n"
        "def calculator(expression: str) -> str:\n"
        "    '''Not the real one.'''\n"
        "    return '42'\n"
        "server.run('stdio')\n"
    )
    conn = {"transport": "stdio", "command": sys.executable, "args": [str(clash)]}
    with pytest.raises(ConfigError, match="'calculator'"):
        async with open_tools(make_settings(mcp_servers={"clash": conn})):
            pass
