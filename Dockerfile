# syntax=docker/dockerfile:1
# Warden's image: build the virtualenv in one stage, run it from a slim one.
# Build: docker build -t warden .   Run: see compose.yaml and docs/deploy.md.

FROM python:3.11-slim AS builder
# Compilers live in this stage only, for any dependency without a wheel for this platform.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY requirements.txt constraints.txt /tmp/build/
RUN /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/build/requirements.txt -c /tmp/build/constraints.txt

FROM python:3.11-slim
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WARDEN_HOST=0.0.0.0 \
    WARDEN_PORT=3978 \
    WARDEN_VAR_DIR=/var/lib/warden
RUN groupadd --system --gid 10001 warden \
    && useradd --system --uid 10001 --gid warden --home-dir /app --no-create-home warden \
    && mkdir -p /var/lib/warden \
    && chown warden:warden /var/lib/warden
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# The source, owned by root and read-only to Warden; .dockerignore keeps tests and caches out.
COPY . /app
USER warden
EXPOSE 3978
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-m", "web.healthcheck"]
CMD ["python", "app.py", "serve"]
