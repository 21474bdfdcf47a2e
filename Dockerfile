# syntax=docker/dockerfile:1
# travis-worker container image. Build: see deploy/README.md ("Building the image").
#
# PYTHON_IMAGE is an argument so an offline build (buildah in CI) can pass a locally imported
# base; the default is the official slim image the image is published from.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The build is stamped into the package (setup.py → travis_worker/_build.json): the context
# has no .git, so the revision and date come from here; see deploy/README.md.
ARG REVISION=""
ARG BUILD_DATE=""
ARG SOURCE_URL=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# The virtualenv lives at its final path, so the runtime stage copies it as is.
RUN python -m venv /opt/travis-worker
COPY pyproject.toml setup.py README.md ./
COPY travis_worker ./travis_worker
RUN TRAVIS_WORKER_BUILD_REVISION="${REVISION}" TRAVIS_WORKER_BUILD_DATE="${BUILD_DATE}" \
    TRAVIS_WORKER_SOURCE_URL="${SOURCE_URL}" /opt/travis-worker/bin/pip install . \
    && /opt/travis-worker/bin/pip uninstall --yes pip setuptools wheel
COPY deploy/docker/healthcheck.py /opt/travis-worker/bin/travis-worker-healthcheck
COPY deploy/docker/fetch_secrets.py /opt/travis-worker/bin/travis-worker-fetch-secrets

FROM ${PYTHON_IMAGE}
ARG VERSION=dev
ARG REVISION=""
ARG BUILD_DATE=""
LABEL org.opencontainers.image.title="travis-worker" \
      org.opencontainers.image.description="Travis CI job runner: one fresh GCE VM per job" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.licenses="MIT"
# The control endpoint listens on all interfaces so the HEALTHCHECK below and the instance
# group's autohealing probe can reach /healthz; override it to move or disable it.
# The spool holds what the broker has not confirmed; mount a host directory there so that a
# worker started after a crash publishes what the last one could not.
ENV PATH=/opt/travis-worker/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRAVIS_WORKER_REMOTE_CONTROLLER_ADDR=0.0.0.0:6060 \
    TRAVIS_WORKER_SPOOL_DIR=/var/spool/travis-worker
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/travis-worker \
        --shell /usr/sbin/nologin travis-worker \
    && install -d -o 10001 -g 10001 /var/spool/travis-worker
COPY --from=build /opt/travis-worker /opt/travis-worker
USER 10001:10001
WORKDIR /home/travis-worker
EXPOSE 6060
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["travis-worker-healthcheck"]
# SIGINT drains: running jobs finish, no new ones start, exit 0. SIGTERM would requeue
# running jobs at once. Give `docker stop` a --time covering the hard timeout (the systemd
# unit in deploy/terraform/templates does).
STOPSIGNAL SIGINT
ENTRYPOINT ["travis-worker"]
