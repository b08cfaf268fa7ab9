"""Reading a JSON object out of what a small model wrote: in ``<tool_call>`` tags, fenced, or bare among prose.

Small local models asked for a tool call write it in whatever form their training favoured: Hermes tags
(``<tool_call>{…}</tool_call>``), a Markdown fence (```` ```json {…} ``` ````), or a bare object after a sentence.
llama.cpp turns only the first into ``tool_calls``; this finds the object in all three (no library does this
leniency for tool-call text: ``json_repair`` style fixing would also invent arguments, which we do not want).
"""

from __future__ import annotations

import json
import re
from typing import Any

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text``: inside tool-call tags, then inside a fence, then anywhere."""
    for pattern in (_TAGGED, _FENCED):
        for match in pattern.finditer(text):
            found = _scan(match.group(1))
            if found is not None:
                return found
    return _scan(text)


def _scan(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    while start != -1:
        try:
            value, _end = _DECODER.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def call_arguments(text: str, tool: str) -> dict[str, Any] | None:
    """The arguments of a call to ``tool`` written in ``text``: either the arguments object itself or a whole call
    (``{"name": tool, "arguments": {…}}``, also ``parameters``); ``None`` when there is no object, or it calls
    another tool."""
    found = first_json_object(text)
    if found is None:
        return None
    if "name" in found and isinstance(found.get("arguments", found.get("parameters")), dict | str):
        if found["name"] != tool:
            return None
        arguments = found.get("arguments", found.get("parameters"))
        if isinstance(arguments, str):  # arguments as a JSON string, OpenAI style
            arguments = _scan(arguments)
        return arguments if isinstance(arguments, dict) else None
    return found


def looks_like_a_tool_call(text: str) -> bool:
    """Whether ``text`` is (mostly) a tool call written as text rather than an answer."""
    stripped = text.strip()
    if "<tool_call>" in stripped:
        return True
    found = first_json_object(stripped)
    return found is not None and "name" in found and ("arguments" in found or "parameters" in found)
