"""The LangGraph API: see ``chatplane.service.langgraph``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
