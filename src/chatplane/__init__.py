"""chatplane: a production-grade service for LLM agents."""

from chatplane.agent import ProductionAgent
from chatplane.config import Settings

__all__ = ["ProductionAgent", "Settings"]
__version__ = "0.1.0"
