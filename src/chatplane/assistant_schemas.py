"""Request and response bodies of ``/v1/assistants``, shared by the service and the Python client (pydantic only:
no server imports)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatplane.schemas import ID_PATTERN

MAX_PAGE = 1000
"""Most assistants (or versions) one request lists."""

Config = Annotated[
    dict[str, Any],
    Field(
        description="LangGraph config for the graph's runs: `configurable` (not the server's keys: thread_id, "
        "checkpoint ids, user_id …), `tags`, `metadata`, `recursion_limit` (up to the server's)."
    ),
]
Context = Annotated[
    dict[str, Any], Field(description="The graph's context (for the built-in agents: model, system prompt, tools …).")
]
Metadata = Annotated[dict[str, Any], Field(description="Your own key/values (at most 16 KB as JSON).")]


def _at_most(value: dict[str, Any] | None, limit: int, what: str) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value, default=str)) > limit:
        raise ValueError(f"{what} is larger than {limit // 1024} KB")
    return value


class _Checked(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("metadata", check_fields=False)
    @classmethod
    def _small_metadata(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _at_most(value, 16_384, "metadata")

    @field_validator("context", check_fields=False)
    @classmethod
    def _small_context(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _at_most(value, 65_536, "context")


class AssistantCreate(_Checked):
    graph_id: str = Field(min_length=1, max_length=128, description="The graph (see GET /agents).", examples=["chat"])
    assistant_id: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="An id of your choice (yours alone: other users may use the same one); default: a new UUID.",
    )
    if_exists: Literal["raise", "do_nothing"] = Field(
        "raise", description="If you have an assistant with that id: `raise` (409), or `do_nothing` (return it)."
    )
    name: str | None = Field(None, min_length=1, max_length=200, description="Default: the graph id.")
    description: str | None = Field(None, max_length=2000)
    config: Config = Field(default_factory=dict)
    context: Context = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)


class AssistantPatch(_Checked):
    """A new version: the current one with the fields given (``metadata`` merged key by key, the others replaced)."""

    graph_id: str | None = Field(None, min_length=1, max_length=128)
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    config: Config | None = None
    context: Context | None = None
    metadata: Metadata | None = None


class AssistantSearch(_Checked):
    graph_id: str | None = Field(None, max_length=128, description="Only this graph's assistants.")
    metadata: dict[str, Any] | None = Field(
        None, description="Only assistants whose metadata has each of these keys with this value."
    )
    name: str | None = Field(None, max_length=200, description="Only assistants whose name contains this (any case).")
    limit: int = Field(10, ge=1, le=MAX_PAGE, strict=True)
    offset: int = Field(0, ge=0, strict=True)


class AssistantPin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, strict=True, description="One of the assistant's versions, made its current one.")


class AssistantOut(BaseModel):
    assistant_id: str
    graph_id: str
    name: str
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    version: int = Field(description="The current version (or, in a list of versions, this one).")
    created_at: float
    updated_at: float = Field(description="When this version became current (in a list of versions: was made).")
    default: bool = Field(
        description="A graph's default assistant: everyone sees it; it comes from the project and cannot be changed."
    )
