"""LangGraph's store filters, applied to values in the process (``chatplane.storage.items``): ``filter`` of a search
(``{"field": value}`` or ``{"field": {"$eq" | "$ne" | "$gt" | "$gte" | "$lt" | "$lte": value}}``) and the match
conditions of a namespace listing (a prefix or a suffix, ``*`` matching any label).

Written here because LangGraph's own matcher is private to its ``InMemoryStore``."""

from __future__ import annotations

from typing import Any

from langgraph.store.base import MatchCondition

_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    if operator == "$eq":
        return bool(actual == expected)
    if operator == "$ne":
        return bool(actual != expected)
    try:
        if operator == "$gt":
            return bool(actual > expected)
        if operator == "$gte":
            return bool(actual >= expected)
        if operator == "$lt":
            return bool(actual < expected)
        return bool(actual <= expected)
    except TypeError:
        return False


def matches(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    """Whether ``value`` passes LangGraph's ``filter``: each field equal, or every operator given holding."""
    for field, wanted in (filter or {}).items():
        actual = value.get(field)
        if isinstance(wanted, dict) and wanted and all(k in _OPS for k in wanted):
            if not all(_compare(actual, op, expected) for op, expected in wanted.items()):
                return False
        elif actual != wanted:
            return False
    return True


def condition_holds(namespace: tuple[str, ...], condition: MatchCondition) -> bool:
    path = condition.path
    if len(path) > len(namespace):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[len(namespace) - len(path) :]
    return all(want == "*" or want == have for want, have in zip(path, part, strict=True))
