"""The model code's reach into libraries' private API is pinned: an upgrade fails here until it is re-checked."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from chatplane.llm import langsmith_inline
from chatplane.llm import openai as lean_openai


@pytest.mark.parametrize("distribution", sorted(lean_openai.UPSTREAM_VERSIONS))
def test_the_lean_openai_model_matches_the_installed_releases(distribution: str) -> None:
    checked = lean_openai.UPSTREAM_VERSIONS[distribution]
    installed = version(distribution)
    assert installed == checked, (
        f"{distribution} is {installed}, but chatplane.llm.openai and chatplane.llm.openai_direct were checked "
        f"against {checked}. Re-check, against the new release, the private names they import and call (listed in "
        "their module docstrings: ChatOpenAI's _get_request_payload, _create_chat_result, "
        "_convert_chunk_to_generation_chunk ..., langchain-openai's _handle_openai_* and the openai SDK's "
        "_build_request family, FinalRequestOptions, AiohttpTransport, DEFAULT_CONNECTION_LIMITS), that the direct "
        "path still sends the SDK's headers, timeouts and errors (tests/llm/test_openai.py), then update "
        "UPSTREAM_VERSIONS in chatplane/llm/openai.py."
    )


def test_the_langsmith_hook_matches_the_installed_release() -> None:
    installed = version("langsmith")
    assert installed == langsmith_inline.UPSTREAM_VERSION, (
        f"langsmith is {installed}, but chatplane.llm.langsmith_inline was checked against "
        f"{langsmith_inline.UPSTREAM_VERSION}. Re-check that langsmith._runtime_overrides.get_runtime_overrides "
        "still exists and that traceable's set-up and end, with tracing off, still only read context variables "
        "(langsmith.run_helpers' aio_to_thread calls; tests/llm/test_factory.py checks no thread hop), then update "
        "UPSTREAM_VERSION in chatplane/llm/langsmith_inline.py."
    )
