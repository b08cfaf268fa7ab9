"""chatplane: a production-grade service for LLM agents.

``ProductionAgent`` and ``Settings`` are imported on first use, so ``chatplane.client`` (the SDK) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatplane.agent import ProductionAgent
    from chatplane.config import Settings

__all__ = ["ProductionAgent", "Settings"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "ProductionAgent":
        from chatplane.agent import ProductionAgent

        return ProductionAgent
    if name == "Settings":
        from chatplane.config import Settings

        return Settings
    raise AttributeError(f"module 'chatplane' has no attribute {name!r}")
