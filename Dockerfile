# callbridge: the service with every agent backend and the offline models inside the image
# (they are PyPI packages), so a replica starts with no download.
#
#   docker build -t callbridge .
#   docker run --rm -p 8080:8080 -e CALLBRIDGE_ACS_CONNECTION=... -e CALLBRIDGE_PUBLIC_URL=... \
#       -e CALLBRIDGE_EVENTGRID_SECRET=... callbridge
#
# Stopping: the orchestrator sends SIGTERM (STOPSIGNAL); the service stops taking calls
# (/readyz answers 503), tells each caller the line's shutdown notice and ends the calls
# within CALLBRIDGE_DRAIN_TIMEOUT_S (default 20 s), then exits 0. Give the container a grace
# period longer than that before the SIGKILL: `docker stop -t 30`, Compose
# `stop_grace_period: 30s`, Kubernetes `terminationGracePeriodSeconds: 30`; Azure Container
# Apps gives 30 s by default (infra/modules/app.bicep sets it). docs/deploy.md explains.

# --- build: a virtual environment with callbridge[all] and the Makefile's --no-deps installs
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/callbridge
ENV PATH=/opt/callbridge/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md Makefile ./
COPY src ./src
COPY deploy/docker/install_no_deps.py ./deploy/docker/install_no_deps.py
# Not editable: the package goes into the venv, the sources stay behind in this stage. The
# versions are pyproject.toml's (DL3013 wants `pip install x==1.2` for named packages).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir '.[all]' \
    && python deploy/docker/install_no_deps.py Makefile \
    && python -m compileall -q /opt/callbridge/lib

# --- runtime: the venv, the profiles, a non-root user
FROM python:3.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 callbridge \
    && useradd --system --uid 10001 --gid callbridge --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin callbridge
WORKDIR /app
COPY --from=build /opt/callbridge /opt/callbridge
COPY profiles ./profiles
COPY deploy/docker/healthcheck.py ./deploy/docker/healthcheck.py
# var/: SQLite records and the records journal (docs/api.md); recordings/: call recordings.
RUN mkdir -p /app/var /app/recordings && chown callbridge:callbridge /app/var /app/recordings
ENV PATH=/opt/callbridge/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    CALLBRIDGE_HOST=0.0.0.0 \
    CALLBRIDGE_PORT=8080 \
    CALLBRIDGE_LOG_JSON=true \
    CALLBRIDGE_PROFILE=/app/profiles/contoso.yaml \
    CALLBRIDGE_DATABASE_URL=sqlite+aiosqlite:////app/var/callbridge.db \
    CALLBRIDGE_RECORDINGS_DIR=/app/recordings
# Numeric, so `runAsNonRoot` checks (Kubernetes) can tell it is not root.
USER 10001:10001
EXPOSE 8080
# Liveness only (/healthz): a draining replica is alive but not ready (/readyz is for the
# balancer). The start period covers loading the offline models.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/app/deploy/docker/healthcheck.py"]
STOPSIGNAL SIGTERM
# Exec form: `callbridge serve` is PID 1 and gets the SIGTERM itself (no shell in between).
ENTRYPOINT ["callbridge", "serve"]
CMD []
