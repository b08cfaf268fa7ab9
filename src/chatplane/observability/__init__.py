"""Observability: logs, metrics and traces of requests, runs, model and tool calls. It observes only.

===============  ===============================================================================================
``operations``   ``Operations``: one app's logs, metrics and traces, and the hooks through which it sees runs
``logging``      ``configure_logging(settings)``: JSON lines or readable text, with request / user / thread / run
``context``      the context variables every log line reads (set by the request observer and the run hooks)
``metrics``      ``Metrics``: Prometheus metrics, per process or shared by several (multiprocess mode)
``tracing``      ``Tracing``: OpenTelemetry spans exported over OTLP/HTTP — nothing at all when not configured
``callbacks``    ``RunObserver``: a LangChain callback handler timing model and tool calls
``http``         ``ObservedRequest``: what is recorded of one request — log context, span, metrics, access line
``records``      what it reads of a run and of a retention round (protocols: it imports neither)
``signals``      counters that low layers bump without knowing the app (storage faults, rate limits)
===============  ===============================================================================================

It imports no web framework and none of the layers it observes, starts no job and owns no lifecycle: the service
wires it in (``chatplane.service.lifespan`` starts and closes it, hands its hooks to the runs and its report callback
to the retention job; ``chatplane.service.observe`` is the ASGI middleware and ``GET /metrics``).

This package imports nothing heavy at import time: ``prometheus_client`` and the OpenTelemetry SDK are imported
when an app starts with them switched on.
"""
