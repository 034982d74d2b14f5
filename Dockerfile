# syntax=docker/dockerfile:1.7
# The application image: gunicorn + Django as an unprivileged user.
#   docker build -t anomaly-app .
# Stage "build" installs the locked dependencies with uv (uv.lock is the only
# source of versions: --frozen refuses to re-resolve) and collects static
# files; stage "runtime" carries only the virtualenv and the code: no uv, no
# build cache, no tests.

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /app

# Dependencies only: this layer is rebuilt when the lock changes, not the code.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-project

COPY . .
# The code's bytecode, compiled once here: the runtime filesystem is read-only.
RUN /opt/venv/bin/python -m compileall -q anomaly detection dashboard manage.py

# whitenoise serves the collected files with a hashed manifest. The key only
# satisfies the production settings check; nothing is signed with it.
RUN DJANGO_ENV=production \
    DJANGO_SECRET_KEY=collectstatic-only-not-a-secret \
    STATIC_ROOT=/app/staticfiles \
    LOG_DIR=/tmp/collectstatic-log \
    /opt/venv/bin/python manage.py collectstatic --noinput -v0


FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG APP_UID=10001
# Named volumes mounted on /var/log/anomaly and /app/ml_artifacts inherit the
# owner of these directories the first time they are used.
RUN groupadd --system --gid ${APP_UID} app \
    && useradd --system --uid ${APP_UID} --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && install -d -o app -g app -m 0755 /var/log/anomaly

COPY --from=build /opt/venv /opt/venv
# The code is root-owned, so the app user cannot change it; it owns only the
# folders it writes to.
COPY --from=build /app /app
RUN install -d -o app -g app -m 0755 /app/ml_artifacts /app/var

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=anomaly.settings \
    DJANGO_ENV=production \
    STATIC_ROOT=/app/staticfiles \
    ML_ARTIFACTS_DIR=/app/ml_artifacts \
    LOG_DIR=/var/log/anomaly \
    PORT=8000 \
    METRICS_PORT=9464 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

WORKDIR /app
USER app:app
# 8000: the application (behind Traefik). 9464: Prometheus metrics of all
# workers, served by the gunicorn master for the internal network only.
EXPOSE 8000 9464

HEALTHCHECK --interval=15s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "deploy/app/healthcheck.py"]

CMD ["gunicorn", "--config", "anomaly/gunicorn_conf.py", "anomaly.wsgi"]
