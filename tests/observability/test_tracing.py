"""Tracing: spans for requests, runs, model and tool calls — exported over OTLP when configured, absent otherwise."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from chatplane.config import Settings
from chatplane.llm.fake import ScriptedChatModel
from chatplane.observability.tracing import traces_url
from chatplane.service.app import create_app
from tests.agents.helpers import call
from tests.conftest import make_settings

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
async def traced_client() -> AsyncIterator[Any]:
    """``await traced_client(settings)`` → (client, exporter): the app's spans go to an in-memory exporter."""
    async with AsyncExitStack() as stack:

        async def make(settings: Settings, model: Any = None) -> tuple[httpx.AsyncClient, InMemorySpanExporter]:
            app = create_app(settings, model=model)
            exporter = InMemorySpanExporter()
            app.state.operations.tracing.exporter_override = exporter  # the test hook
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chatplane.test")
            await stack.enter_async_context(client)
            return client, exporter

        yield make


def by_name(spans: Any, prefix: str) -> list[Any]:
    return [s for s in spans if s.name.startswith(prefix)]


async def test_a_request_its_run_and_the_model_and_tool_calls_form_one_trace(traced_client) -> None:
    model = ScriptedChatModel(replies=[call("calculator", {"expression": "2*21"}), "The answer is 42."])
    client, exporter = await traced_client(make_settings(), model)
    thread_id = (await client.post("/v1/threads", json={"agent": "react"})).json()["thread_id"]
    exporter.clear()
    response = await client.post(
        f"/v1/threads/{thread_id}/runs", json={"message": "two times twenty-one?"}, headers={"X-Request-ID": "req-42"}
    )
    run = response.json()
    spans = exporter.get_finished_spans()

    (request,) = by_name(spans, "POST ")
    assert request.name == "POST /v1/threads/{thread_id}/runs" and request.kind == SpanKind.SERVER
    assert request.attributes["http.route"] == "/v1/threads/{thread_id}/runs"
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["chatplane.request_id"] == "req-42"
    assert request.parent is None

    (agent_span,) = by_name(spans, "invoke_agent ")
    assert agent_span.name == "invoke_agent react"
    assert agent_span.attributes["chatplane.run_id"] == run["run_id"]
    assert agent_span.attributes["chatplane.thread_id"] == thread_id
    assert agent_span.parent.span_id == request.context.span_id  # the run is a child of the request that began it

    model_calls = by_name(spans, "chat ")
    assert len(model_calls) == 2
    for span in model_calls:
        assert span.parent.span_id == agent_span.context.span_id
        assert span.attributes["gen_ai.request.model"] == "fake:echo"  # the configured model's id
        assert span.kind == SpanKind.CLIENT
    tokens = sum(
        s.attributes["gen_ai.usage.input_tokens"] + s.attributes["gen_ai.usage.output_tokens"] for s in model_calls
    )
    assert tokens == run["usage"]["total_tokens"]

    (tool,) = by_name(spans, "execute_tool ")
    assert tool.name == "execute_tool calculator" and tool.attributes["gen_ai.tool.name"] == "calculator"
    assert tool.parent.span_id == agent_span.context.span_id
    assert {s.context.trace_id for s in spans} == {request.context.trace_id}
    text = repr([dict(s.attributes) for s in spans])
    assert "twenty-one" not in text and "answer is 42" not in text and "2*21" not in text  # no content


async def test_an_incoming_traceparent_is_continued_and_failures_are_marked(traced_client) -> None:
    client, exporter = await traced_client(make_settings(model="fake:echo?fail=error"))
    thread_id = (await client.post("/v1/threads", json={})).json()["thread_id"]
    exporter.clear()
    response = await client.post(
        f"/v1/threads/{thread_id}/runs", json={"message": "hi"}, headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 502
    spans = exporter.get_finished_spans()
    (request,) = by_name(spans, "POST ")
    assert format(request.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(request.parent.span_id, "016x") == "b7ad6b7169203331"
    assert request.status.status_code == StatusCode.ERROR
    (agent_span,) = by_name(spans, "invoke_agent ")
    assert agent_span.status.status_code == StatusCode.ERROR
    failed_calls = [s for s in by_name(spans, "chat ") if s.status.status_code == StatusCode.ERROR]
    assert failed_calls and all(s.attributes["error.type"] == "FakeProviderError" for s in failed_calls)
    assert "sk-fake" not in repr([(s.status.description, dict(s.attributes)) for s in spans])


async def test_tracing_is_off_without_an_endpoint(client_for) -> None:
    client = await client_for(make_settings())
    operations = client.app.state.operations
    assert operations.tracing.tracer is None
    assert operations.observer is not None and operations.observer.tracer is None
    assert (await client.post("/v1/threads", json={})).status_code == 201
    # nothing installed globally either: the API's default provider is still the no-op proxy
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """A minimal OTLP/HTTP receiver on a free port: (endpoint, the requests it received)."""
    received: list[tuple[str, str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


async def test_spans_are_exported_over_otlp_http_when_configured(client_for, otlp_collector) -> None:
    endpoint, received = otlp_collector
    assert traces_url(endpoint) == f"{endpoint}/v1/traces" == traces_url(f"{endpoint}/v1/traces/")
    async with AsyncExitStack() as stack:
        app = create_app(make_settings(otel_endpoint=endpoint, otel_service_name="chatplane-test"))
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chatplane.test")
        )
        thread_id = (await client.post("/v1/threads", json={})).json()["thread_id"]
        await client.post(f"/v1/threads/{thread_id}/runs", json={"message": "hi"})
    # shutting down flushed the batch
    assert received and all(path == "/v1/traces" for path, _, _ in received)
    assert all(content_type == "application/x-protobuf" for _, content_type, _ in received)
    names, services = set(), set()
    for _, _, body in received:
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            services |= {a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"}
            for scope_spans in resource_spans.scope_spans:
                names |= {span.name for span in scope_spans.spans}
    assert services == {"chatplane-test"}
    assert {"POST /v1/threads", "POST /v1/threads/{thread_id}/runs", "invoke_agent chat", "chat fake:echo"} <= names
