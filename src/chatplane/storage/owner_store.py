"""One user's view of the long-term store (``OwnerStore``): a ``BaseStore`` that adds the owner to every namespace on
the way in and removes it on the way out, and refuses what the store must not hold.

Routes (``/v1/store``, the LangGraph API's ``/store``), the memory tools and every graph (through LangGraph's runtime:
``get_store()``, ``runtime.store``) get an ``OwnerStore`` of the caller or the run's owner: a namespace reads back
exactly as it was written, and no namespace a user can write reaches another user's items.

Checks (``StoreLimits``, each a ``InvalidInputError``, 422, before anything of the batch is done): a namespace of
1 to ``max_depth`` labels of 1 to 128 characters, no ``.`` (LangGraph's separator), no control character, not
``langgraph`` first (LangGraph's reserved root); a key of 1 to 512 characters without control characters; a value
that is a JSON object of at most ``max_value_bytes`` (UTF-8); a TTL above 0 and at most ten years; a search's
``limit`` from 1 to ``max_limit``, an ``offset`` up to 10,000, a query up to 2,000 characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from chatplane.errors import InvalidInputError

_CONTROL = re.compile("[\x00-\x1f\x7f]")
MAX_LABEL_CHARS = 128
MAX_KEY_CHARS = 512
MAX_OFFSET = 10_000
MAX_QUERY_CHARS = 2_000
MAX_TTL_MINUTES = 10 * 366 * 24 * 60
MAX_NAMESPACES_LIMIT = 1_000


@dataclass(frozen=True)
class StoreLimits:
    max_value_bytes: int = 65_536
    max_depth: int = 8
    max_limit: int = 100


def check_namespace(
    namespace: tuple[str, ...], limits: StoreLimits, *, what: str = "namespace", empty: bool = False
) -> None:
    if not namespace and not empty:
        raise InvalidInputError(f"The {what} needs at least one label.")
    if len(namespace) > limits.max_depth:
        raise InvalidInputError(f"The {what} has {len(namespace)} labels; at most {limits.max_depth} are allowed.")
    for label in namespace:
        if not isinstance(label, str) or not label or len(label) > MAX_LABEL_CHARS:
            raise InvalidInputError(f"Each {what} label is a string of 1 to {MAX_LABEL_CHARS} characters.")
        if "." in label or _CONTROL.search(label):
            raise InvalidInputError(f"A {what} label must not contain '.' or control characters.")
    if namespace and namespace[0] == "langgraph":
        raise InvalidInputError(f"A {what} must not start with 'langgraph' (reserved).")


def check_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise InvalidInputError(f"A key is a string of 1 to {MAX_KEY_CHARS} characters.")
    if _CONTROL.search(key):
        raise InvalidInputError("A key must not contain control characters.")


def check_value(value: Any, limits: StoreLimits) -> None:
    if not isinstance(value, dict):
        raise InvalidInputError("A value is a JSON object.")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > limits.max_value_bytes:
        raise InvalidInputError(
            f"The value is {size} bytes; at most {limits.max_value_bytes} are allowed "
            "(CHATPLANE_STORE_MAX_VALUE_BYTES)."
        )


def check_ttl(ttl: Any) -> None:
    if ttl is None:
        return
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= MAX_TTL_MINUTES:
        raise InvalidInputError(f"ttl is in minutes, above 0 and at most {MAX_TTL_MINUTES}.")


def check_page(limit: int, offset: int, max_limit: int) -> None:
    if not 1 <= limit <= max_limit:
        raise InvalidInputError(f"limit must be from 1 to {max_limit}.")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInputError(f"offset must be from 0 to {MAX_OFFSET}.")


def check_op(op: Op, limits: StoreLimits) -> None:
    """Refuse an operation the store must not run (``InvalidInputError``)."""
    if isinstance(op, GetOp):
        check_namespace(op.namespace, limits)
        check_key(op.key)
    elif isinstance(op, PutOp):
        check_namespace(op.namespace, limits)
        check_key(op.key)
        if op.value is not None:
            check_value(op.value, limits)
            check_ttl(op.ttl)
            if op.index not in (None, False) and not (
                isinstance(op.index, list) and all(isinstance(p, str) and p for p in op.index) and len(op.index) <= 16
            ):
                raise InvalidInputError("index is false, or a list of up to 16 field paths.")
    elif isinstance(op, SearchOp):
        check_namespace(op.namespace_prefix, limits, what="namespace prefix", empty=True)
        check_page(op.limit, op.offset, limits.max_limit)
        if op.query is not None and (not isinstance(op.query, str) or len(op.query) > MAX_QUERY_CHARS):
            raise InvalidInputError(f"query is a string of at most {MAX_QUERY_CHARS} characters.")
        if op.filter is not None and not isinstance(op.filter, dict):
            raise InvalidInputError("filter is a JSON object.")
    elif isinstance(op, ListNamespacesOp):
        check_page(op.limit, op.offset, MAX_NAMESPACES_LIMIT)
        for condition in op.match_conditions or ():
            labels = tuple(label for label in condition.path if label != "*")
            check_namespace(labels, limits, what=f"namespace {condition.match_type}", empty=True)
        if op.max_depth is not None and not 1 <= op.max_depth <= limits.max_depth:
            raise InvalidInputError(f"max_depth must be from 1 to {limits.max_depth}.")


class OwnerStore(BaseStore):
    """``store`` as ``owner`` sees it: their items only, their namespaces as they wrote them."""

    def __init__(self, store: BaseStore, owner: str, limits: StoreLimits | None = None) -> None:
        self.store = store
        self.owner = owner
        self.limits = limits or StoreLimits()
        self.supports_ttl = store.supports_ttl
        self.ttl_config = store.ttl_config

    def _inward(self, op: Op) -> Op:
        check_op(op, self.limits)
        owner = (self.owner,)
        if isinstance(op, GetOp | PutOp):
            return op._replace(namespace=owner + tuple(op.namespace))
        if isinstance(op, SearchOp):
            return op._replace(namespace_prefix=owner + tuple(op.namespace_prefix))
        assert isinstance(op, ListNamespacesOp)
        conditions = [c for c in op.match_conditions or () if c.match_type == "suffix"]
        prefixes = [c for c in op.match_conditions or () if c.match_type == "prefix"]
        path = owner + tuple(prefixes[0].path) if prefixes else owner
        conditions.insert(0, MatchCondition(match_type="prefix", path=path))
        conditions.extend(MatchCondition("prefix", owner + tuple(c.path)) for c in prefixes[1:])
        depth = op.max_depth + 1 if op.max_depth is not None else None
        return op._replace(match_conditions=tuple(conditions), max_depth=depth)

    @staticmethod
    def _strip(item: Item) -> Item:
        if isinstance(item, SearchItem):
            return SearchItem(item.namespace[1:], item.key, item.value, item.created_at, item.updated_at, item.score)
        return Item(
            value=item.value,
            key=item.key,
            namespace=item.namespace[1:],
            created_at=item.created_at,
            updated_at=item.updated_at,
        )

    def _outward(self, result: Result) -> Result:
        if isinstance(result, Item):
            return self._strip(result)
        if isinstance(result, list):
            return [self._strip(r) if isinstance(r, Item) else tuple(r[1:]) for r in result]  # type: ignore[return-value]
        return result

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        inward = [self._inward(op) for op in ops]
        return [self._outward(result) for result in self.store.batch(inward)]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        inward = [self._inward(op) for op in ops]
        return [self._outward(result) for result in await self.store.abatch(inward)]
