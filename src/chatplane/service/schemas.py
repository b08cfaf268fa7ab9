"""Request and response bodies, shared by the service and the Python client."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chatplane.agent import ID_PATTERN


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code.", examples=["session_not_found"])
    message: str = Field(description="Human-readable explanation, safe to show.", examples=["No such session."])


class ErrorBody(BaseModel):
    """Every error response has this shape."""

    error: ErrorDetail


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(pattern=ID_PATTERN, description="Who is talking.", examples=["alice"])
    message: str = Field(min_length=1, description="The user's message.", examples=["What is LangGraph?"])
    session_id: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="Conversation to continue; default `session-<user_id>`. Sessions are private to their owner.",
        examples=["trip-planning"],
    )


class ChatResponse(BaseModel):
    response: str = Field(description="The agent's answer.")
    session_id: str = Field(description="The session the message went to.")


class HistoryResponse(BaseModel):
    session_id: str
    messages: list[str] = Field(description="Message texts, oldest first (user and agent alternating).")


class ResetResponse(BaseModel):
    message: str = Field(examples=["Session reset"])


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, bool] = Field(description="Each dependency and whether it answered.")
