"""Operations: logs, metrics and traces of requests, runs, model and tool calls (and the retention job's wiring).

===============  ===============================================================================================
``logging``      ``configure_logging(settings)``: JSON lines or readable text, with request / user / thread / run
``context``      the context variables every log line reads (set by the HTTP middleware and the run hooks)
``metrics``      ``Metrics``: Prometheus metrics, per process or shared by several (multiprocess mode)
``tracing``      ``Tracing``: OpenTelemetry spans exported over OTLP/HTTP — nothing at all when not configured
``callbacks``    ``RunObserver``: a LangChain callback handler timing model and tool calls
``http``         ``RequestObserver``: ASGI middleware — request id, HTTP metrics, access log, request span
``signals``      counters that low layers bump without knowing the app (storage faults, rate limits)
``setup``        ``install_operations(app, settings)``: wires all of the above into the FastAPI app
===============  ===============================================================================================

This package imports nothing heavy at import time: ``prometheus_client`` and the OpenTelemetry SDK are imported
when an app starts with them switched on.
"""
