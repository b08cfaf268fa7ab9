"""Settings: the one place chatplane reads its environment.

Every setting has the prefix ``CHATPLANE_`` (``CHATPLANE_MODEL``, ``CHATPLANE_STORAGE_URL`` ...), except the
OpenAI credentials, which also answer to the names every OpenAI tool uses (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``). A ``.env`` file in the working directory is read too. Build one ``Settings`` object and pass
it down; nothing else in the package looks at ``os.environ``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "local:qwen2.5-coder-1.5b"
DEFAULT_STORAGE_URL = "sqlite:///./data/chatplane.storage.database"


class Settings(BaseSettings):
    """Configuration of a chatplane process, from the environment (prefix ``CHATPLANE_``) or keyword arguments."""

    model_config = SettingsConfigDict(
        env_prefix="CHATPLANE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["development", "production"] = Field(
        "development", description="`production` turns on the start-up refusals of unsafe settings."
    )

    # --- the model ---------------------------------------------------------------------------------------------
    model: str = Field(
        DEFAULT_MODEL,
        description="Chat model as `provider:model`: `local:qwen2.5-coder-1.5b` (embedded; also "
        "`local:qwen2.5-coder-0.5b`, `local:smollm2-135m`, `local:/path/to/file.gguf`), `openai:gpt-4o`, `fake:echo`.",
    )
    system_prompt: str = Field(
        "You are a helpful assistant. Answer briefly and accurately.",
        description="System message put before every conversation sent to the model (not stored in the thread).",
    )
    model_timeout_s: float = Field(60.0, gt=0, description="Longest wait for one model call before a 504.")
    model_max_retries: int = Field(
        2, ge=0, description="Retries of a transient model failure (429, 5xx, timeout), with backoff and jitter."
    )
    max_output_tokens: int | None = Field(
        None,
        gt=0,
        description="Cap on tokens generated per model call (default: the provider's; 512 locally).",
    )
    temperature: float = Field(0.0, ge=0, le=2)
    model_allowlist: list[str] = Field(
        default_factory=list,
        description="Model ids a client may choose for a new thread (JSON list); empty: only the server's model.",
    )
    context_budget_tokens: int | None = Field(
        None,
        ge=64,
        description="Most tokens of history sent to the model per call (newest first); default 8,000, sized for "
        "cost (less if the embedded model holds less). The thread keeps every message.",
    )
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("CHATPLANE_OPENAI_API_KEY", "OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("CHATPLANE_OPENAI_BASE_URL", "OPENAI_BASE_URL", "openai_base_url"),
        description="Any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp ...).",
    )

    # --- the embedded model (llama.cpp in-process) ---------------------------------------------------------------
    local_context_tokens: int = Field(
        4096, ge=512, description="Context window of the embedded model, shared by its parallel slots."
    )
    local_parallel: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        ge=1,
        le=16,
        description="Requests the embedded model decodes at once (default: one per core, at most 4).",
    )
    local_cache_ram_mib: int = Field(
        256, ge=0, description="Prompt-cache RAM of the embedded model (MiB): earlier turns' prompts kept for reuse."
    )
    local_threads: int = Field(
        0,
        ge=0,
        description="CPU threads of the embedded model; 0 = one per core but one (the event loop keeps a core).",
    )
    local_model_path: str | None = Field(
        None, description="A GGUF file to load for any `local:` model (older form of `CHATPLANE_MODEL=local:/path`)."
    )
    models_dir: str = Field(
        "~/.cache/chatplane/models",
        description="Where installed embedded models go (`make model`) and where `local:<file>.gguf` is looked up.",
    )
    local_chat_template: str | None = Field(
        None,
        description="Chat template for a GGUF of your own: a Jinja file, or a llama.cpp built-in name (`chatml`, "
        "`llama3` ...); default: the file's own.",
    )
    local_tool_calls_per_turn: int = Field(
        1, ge=1, le=8, description="Tool calls an agent on the embedded model makes per turn before it must answer."
    )

    # --- agents and tools (chat / react / multi) ------------------------------------------------------------------
    config_file: str | None = Field(
        None,
        description="Project file (chatplane.json, or a langgraph.json) naming the graphs and tools to serve beside "
        "the built-in agents (`chatplane serve --config FILE`).",
    )
    default_agent: str = Field(
        "chat", description="Graph (or assistant) of a new session/thread when the request names none."
    )
    fallback_models: list[str] = Field(
        default_factory=list, description="Model ids tried in order when the main model fails (JSON list)."
    )
    max_model_calls: int = Field(12, ge=1, description="Model calls allowed per run (ReAct / multi-agent).")
    max_tool_calls: int = Field(24, ge=1, description="Tool calls allowed per run.")
    recursion_limit: int = Field(
        100, ge=5, description="LangGraph super-steps allowed per run (a ReAct round takes about 6)."
    )
    tool_timeout_s: float = Field(30.0, gt=0, description="Longest wait for one tool call.")
    idempotency_ttl_s: float = Field(
        86_400.0,
        gt=0,
        description="How long an Idempotency-Key stands: a request sent again with it within this time gets the "
        "first one's run.",
    )
    run_timeout_s: float = Field(
        900.0,
        gt=0,
        description="Longest a run may execute (each stretch of it: a pause for a human does not count) before it "
        "fails with `run_limit_exceeded`; bounds graphs that call models or services of their own.",
    )
    docs_dir: str | None = Field(
        None,
        description="Folder of text/Markdown documents searched by `search_docs`; unset: `./data/docs` if it exists, "
        "else the sample documents about chatplane that ship with it.",
    )
    mcp_servers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="MCP servers offered to agents as tools, as langchain-mcp-adapters connections (JSON): "
        '{"name": {"transport": "stdio", "command": "...", "args": [...]}} or '
        '{"name": {"transport": "streamable_http", "url": "..."}}.',
    )
    http_tool_allowlist: list[str] = Field(
        default_factory=list, description="Hosts the `http_get` tool may reach; empty = the tool is not offered."
    )
    sensitive_tools: list[str] = Field(
        default_factory=list, description="Tools that pause the run until a human approves the call."
    )

    # --- runs across processes -------------------------------------------------------------------------------------
    run_lease_s: float = Field(
        10.0, ge=1, description="A running run whose worker has not renewed its lease for this long is recovered."
    )
    run_recovery: Literal["resume", "fail"] = Field(
        "resume", description="A recovered run: `resume` from its last checkpoint, or `fail` it (`worker_lost`)."
    )
    run_max_recoveries: int = Field(
        2,
        ge=0,
        description="How many times one run is resumed after its worker was lost; the next time it is failed "
        "(`worker_lost`): a run that kills whichever process runs it would otherwise take down every worker in turn.",
    )
    checkpoint_durability: Literal["exit", "async", "sync"] = Field(
        "exit",
        description="When a run's checkpoints are written: `exit` once per run (fewest writes; a crashed run is "
        "redone from its message), `async`/`sync` after every step (a crashed run resumes mid-way).",
    )
    shutdown_grace_s: float = Field(
        20.0, ge=0, description="On SIGTERM, how long running runs may finish before they are handed back."
    )

    # --- storage -----------------------------------------------------------------------------------------------
    storage_url: str = Field(
        DEFAULT_STORAGE_URL,
        description="`sqlite:///path.db` (default), `postgresql://user@host/db`, or `memory://` (lost on exit).",
    )
    pg_pool_min_size: int = Field(1, ge=0)
    pg_pool_max_size: int = Field(10, ge=1)
    storage_timeout_s: float = Field(
        5.0, gt=0, description="Longest wait for a database connection before a request gets a 503."
    )

    # --- security -------------------------------------------------------------------------------------------------
    jwt_secret: SecretStr | None = Field(None, description="Accept HS256 JWTs signed with this secret (>= 32 chars).")
    jwt_jwks: str | None = Field(None, description="Accept RS/ES JWTs verified by this JWKS (a file path or URL).")
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_user_claim: str = Field("sub", description="The JWT claim that names the user.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API from a browser.")
    rate_limit_per_minute: int = Field(120, ge=0, description="Requests per minute per user/key; 0 = no limit.")
    tokens_per_day: int = Field(0, ge=0, description="Model tokens per day per user; 0 = no limit.")
    max_concurrent_runs_per_user: int = Field(8, ge=0, description="Active runs per user at once; 0 = no limit.")
    redis_url: str | None = Field(
        None, description="Redis for state shared by several processes (rate limits, signals): redis://host:6379/0"
    )

    # --- operations -----------------------------------------------------------------------------------------------
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="`json`: one JSON object per line; `text`: for people; `auto`: json in production."
    )
    log_content: bool = Field(False, description="Log message bodies (debugging only; off by default).")
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    metrics_multiproc_dir: str | None = Field(
        None,
        validation_alias=AliasChoices("CHATPLANE_METRICS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROC_DIR"),
        description="Shared folder for metrics of several worker processes (prometheus-client multiprocess mode).",
    )
    otel_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint for traces (e.g. http://collector:4318); unset = tracing off, no cost."
    )
    otel_service_name: str = "chatplane"
    prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description='Cost table for usage estimates: {"openai:gpt-4o": {"input_per_million": 2.5, '
        '"output_per_million": 10}}.',
    )
    retention_days: float | None = Field(
        None, gt=0, description="Delete threads idle for longer than this (periodic job); unset = keep forever."
    )
    prune_interval_s: float = Field(3600.0, gt=0, description="How often the retention job runs.")

    # --- the HTTP service --------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_message_chars: int = Field(32_000, ge=1, description="Longest accepted user message, in characters.")
    max_messages_per_request: int = Field(200, ge=1, description="Most messages in one OpenAI-style request.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body (413 above).")
    request_header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Longest a client may take to send a request's headers (from its connection, or from the first "
        "byte of a later request) before a 408 and the connection closed.",
    )
    connection_max_requests: int = Field(
        1000,
        ge=0,
        description="Requests one client connection may carry; the last is answered with `Connection: close`, so "
        "clients reconnect and spread over the workers again (0 = no bound).",
    )
    connection_max_age_s: float = Field(
        60.0,
        ge=0,
        description="Seconds a client connection may stay open; the next response after that closes it, so a "
        "restarted worker gets its share of clients back within this time (0 = no bound).",
    )
    request_body_timeout_s: float = Field(
        30.0, gt=0, description="Longest a client may take to send a request's body before a 408."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    sse_ping_s: float = Field(15.0, gt=0, description="Heartbeat comment interval on event streams.")

    # --- schedules and webhooks ----------------------------------------------------------------------------------
    max_schedules_per_user: int = Field(100, ge=0, description="Schedules (crons) one user may keep; 0 = no limit.")
    schedule_poll_s: float = Field(
        1.0, gt=0, description="How often each process looks for due schedules (and webhook deliveries)."
    )
    webhook_allowlist: list[str] = Field(
        default_factory=list,
        description="Hosts, addresses or networks (CIDR) webhooks may reach even though they are loopback, private "
        'or link-local (JSON list), e.g. ["127.0.0.1"] for a local receiver; empty: public addresses only.',
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="Longest one webhook delivery attempt may take.")
    webhook_retry_s: float = Field(
        3600.0, ge=0, description="How long a failing webhook is retried (with backoff) before it is given up."
    )
    webhook_backoff_s: float = Field(
        2.0, gt=0, description="Wait before the first retry of a failed webhook; it doubles each time (to 5 min)."
    )
    webhook_max_response_bytes: int = Field(
        65_536, ge=0, description="Most bytes of a webhook receiver's response read before the connection is closed."
    )

    # --- assistants -----------------------------------------------------------------------------------------------
    max_assistants_per_user: int = Field(
        1000, ge=0, description="Assistants one user may keep (the graphs' defaults not counted); 0 = no limit."
    )

    # --- long-term memory (the store) -------------------------------------------------------------------------
    embeddings: str = Field(
        "local:e5-small",
        description="What embeds store items for semantic search: local:e5-small (offline, on the CPU), "
        "openai:<model> (an OpenAI-compatible /v1/embeddings) or none.",
    )
    embeddings_base_url: str | None = Field(
        None,
        description="Base URL of the /v1/embeddings endpoint for openai:<model>; unset = CHATPLANE_OPENAI_BASE_URL.",
    )
    embeddings_api_key: SecretStr | None = Field(
        None, description="Key for the embeddings endpoint; unset = the OpenAI key."
    )
    embeddings_threads: int = Field(1, ge=1, le=64, description="CPU threads the local embedding model may use.")
    store_max_value_bytes: int = Field(
        65_536, ge=256, description="Largest value one store item may hold (JSON, UTF-8 bytes; 422 above)."
    )
    store_max_namespace_depth: int = Field(8, ge=1, le=32, description="Most labels in a store namespace.")
    store_max_search_limit: int = Field(100, ge=1, le=1000, description="Most items one store search returns.")
    store_vector_cache: int = Field(
        100_000,
        ge=0,
        description="Most item vectors a process keeps in memory for semantic search, all users together (~1.5 KB "
        "each); a user with more is searched from the database on every query.",
    )

    @field_validator("model")
    @classmethod
    def _model_has_provider(cls, value: str) -> str:
        if ":" not in value:
            raise ValueError("model must look like `provider:model`, e.g. `openai:gpt-4o` or `local:smollm2-135m`")
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_scheme_known(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://", "memory://")):
            raise ValueError("storage_url must start with sqlite://, postgresql:// or memory://")
        return value


_WEAK_SECRETS = {"secret", "changeme", "change-me", "password", "postgres", "chatplane", "admin", "test"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def production_problems(settings: Settings) -> list[str]:
    """What makes these settings unsafe to run in production, each with what to set instead."""
    problems = []
    if "*" in settings.cors_origins:
        problems.append("CHATPLANE_CORS_ORIGINS contains '*': list the exact origins of your web front-ends.")
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value()
        if len(secret) < 32 or secret.lower() in _WEAK_SECRETS:
            problems.append("CHATPLANE_JWT_SECRET is a default or short secret: use 32+ random characters.")
    from urllib.parse import urlsplit

    password = urlsplit(settings.storage_url).password
    if password is not None and password.lower() in _WEAK_SECRETS:
        problems.append("CHATPLANE_STORAGE_URL uses a default database password: set a real one.")
    key = settings.openai_api_key
    if key is not None and key.get_secret_value().lower() in _WEAK_SECRETS | {"sk-test", "x"}:
        problems.append("OPENAI_API_KEY is a placeholder: set the real key.")
    return problems


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment (FastAPI dependency and CLI default)."""
    return Settings()
