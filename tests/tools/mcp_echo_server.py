"""A tiny MCP server over stdio for the tests: ``echo`` answers, ``explode`` fails."""

from __future__ import annotations

from mcp.server.fastmcp import FastMCP

server = FastMCP("echo", log_level="WARNING")


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo: {text}"


@server.tool()
def explode(text: str) -> str:
    """Always fails."""
    raise ValueError(f"exploded on {text}")


if __name__ == "__main__":
    server.run("stdio")
