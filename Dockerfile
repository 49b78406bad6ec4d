# The service image (also runs the simulated gateway: `command: ["ibkr-sim", ...]`).
# Slim, pinned, non-root; healthcheck on /ready. Build: docker build -t ibkr-adapter:local .
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
ARG CLIENT_LIBRARY=ib_insync
RUN pip install --no-cache-dir --prefix=/install ".[service,$(echo ${CLIENT_LIBRARY} | tr _ -)]"

FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IBKR_SERVICE_HOST=0.0.0.0 \
    IBKR_SERVICE_PORT=8000
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ibkr
COPY --from=build /install /usr/local
WORKDIR /app
COPY config.yaml ./config.yaml
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('IBKR_SERVICE_PORT', '8000'), timeout=4)"]
CMD ["ibkr-service", "--config", "config.yaml"]
