"""An item's row as LangGraph's ``Item`` / ``SearchItem`` (the owner added back to the namespace), an indexed value's
text, and a vector as the float32 bytes the store keeps (``chatplane.storage.items``)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from langgraph.store.base import Item, SearchItem

from chatplane.storage.database import loads


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    return []


def to_bytes(vector: Sequence[float]) -> bytes:
    import numpy as np

    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return (array / norm if norm else array).tobytes()


def _time(value: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(value, datetime.UTC)


def item(owner: str, row: dict[str, Any]) -> Item:
    return Item(
        value=loads(row["value"]),
        key=row["key"],
        namespace=(owner, *row["prefix"].split(".")),
        created_at=_time(float(row["created_at"])),
        updated_at=_time(float(row["updated_at"])),
    )


def search_item(owner: str, row: dict[str, Any], score: float | None) -> SearchItem:
    return SearchItem(
        namespace=(owner, *row["prefix"].split(".")),
        key=row["key"],
        value=loads(row["value"]),
        created_at=_time(float(row["created_at"])),
        updated_at=_time(float(row["updated_at"])),
        score=score,
    )
