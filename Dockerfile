# syntax=docker/dockerfile:1
# The actionflows image: one `actionflows` command for the worker, the webhook ingest, the run
# history and console, the operator tools (replay, dlq) and the Salesforce emulator.
#
# Two stages. The first installs the exact versions of requirements-runtime.lock (the runtime part
# of requirements.lock, written by `make lock`, the same pins without the dev tools) with
# --no-deps, then the project itself with --no-deps: nothing is resolved at build time. The
# second copies that virtualenv into a fresh slim image that runs as an unprivileged user.
#
#   docker build -t actionflows .
#   docker run --rm actionflows actionflows worker --help
# docs/deploy.md runs it with docker compose.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/actionflows
WORKDIR /src
COPY requirements-runtime.lock ./
RUN /opt/actionflows/bin/python -m pip install --no-deps -r requirements-runtime.lock
COPY pyproject.toml README.md ./
COPY pipeline pipeline
COPY topics topics
COPY salesforce salesforce
COPY sfemulator sfemulator
COPY zendesk zendesk
COPY zdemulator zdemulator
COPY agents agents
COPY localkafka localkafka
# Not editable, no dependencies: the lock above already installed every one of them.
RUN /opt/actionflows/bin/python -m pip install --no-deps . \
    && /opt/actionflows/bin/python -m pip check

FROM ${PYTHON_IMAGE}
# A system user without a login shell; its home holds the worker's state (faust's data folder)
# and the run history, on volumes in docker-compose.yml. The emulator's folder is where its JWT
# key lives, on a volume the workers read.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/actionflows --create-home \
        --shell /usr/sbin/nologin actionflows \
    && install -d -o actionflows -g actionflows -m 0700 \
        /var/lib/actionflows/history /var/lib/actionflows-emulator
COPY --from=build /opt/actionflows /opt/actionflows
COPY flows /app/flows
ENV PATH=/opt/actionflows/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER actionflows:actionflows
# No ports of its own: each command says which it serves (worker 6066, ingest 8088, api 6067).
CMD ["actionflows", "--help"]
