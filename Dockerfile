# syntax=docker/dockerfile:1
#
# Stepwise image: one image for every role in docker-compose.yml (the one-shot `migrate`
# service, the app replicas, and `docker compose run --rm migrate stepwise user ...`).
# See docs/deployment.md.
#
#   docker build -t stepwise:local .
#
# Three stages: the pinned front-end assets (Node), a wheel of the project with those assets
# inside it (Python), and the runtime, which holds the installed wheel and nothing from the
# build.

# --- 1. front-end assets: the same npm packages and the same four files as `make setup` ------
FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
# The copies the Makefile makes into app/static/vendor/ (VENDOR_ASSETS).
RUN mkdir -p vendor \
 && cp node_modules/htmx.org/dist/htmx.min.js vendor/htmx.min.js \
 && cp node_modules/htmx-ext-ws/dist/ws.min.js vendor/ws.min.js \
 && cp node_modules/swagger-ui-dist/swagger-ui-bundle.js vendor/swagger-ui-bundle.js \
 && cp node_modules/swagger-ui-dist/swagger-ui.css vendor/swagger-ui.css

# --- 2. the wheel: app/ with its templates, static files, vendor/ and migrations -------------
FROM python:3.11-slim AS wheel
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# pyproject.toml names README.md as the package's readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY app/ app/
# pyproject.toml packs the top-level migrations/ into the wheel as app/_migrations/.
COPY migrations/ migrations/
# The assets must be in the tree before the build: pyproject's package-data
# (static/**/*) is what puts them into the wheel.
COPY --from=assets /build/vendor/ app/static/vendor/
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- 3. runtime ------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# A plain (non-editable) install of the wheel, without the dev extras.
COPY --from=wheel /wheels/ /tmp/wheels/
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
 && pip install -c /tmp/requirements.lock /tmp/wheels/stepwise-*.whl \
 && rm -rf /tmp/wheels /tmp/requirements.lock

# Fail the build, not the deployment, when the package is incomplete: the CLI starts, the
# migrations came with the package (app/_migrations), and the templates and vendored assets
# were installed.
RUN stepwise --help > /dev/null \
 && python -c "from app.schema import MIGRATIONS_DIR as m, head_revision; \
assert m.parent.name == 'app', f'migrations not in the package: {m}'; \
print('migrations head:', head_revision())" \
 && python -c "from app.templating import STATIC_DIR as s, TEMPLATES_DIR as t; \
names = ['htmx.min.js', 'ws.min.js', 'swagger-ui-bundle.js', 'swagger-ui.css']; \
missing = [n for n in names if not (s / 'vendor' / n).is_file()]; \
assert not missing, f'vendor assets missing: {missing}'; \
assert any(t.rglob('*.html')), 'templates missing'"

# An unprivileged user. Its home is the working directory, so the default SQLite URL
# (sqlite+aiosqlite:///var/stepwise.db, relative) would be writable for a single-container
# trial; docker-compose.yml uses PostgreSQL.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /srv/stepwise \
        --shell /usr/sbin/nologin stepwise
USER stepwise
WORKDIR /srv/stepwise

EXPOSE 8000

# slim has no curl: ask /healthz with the standard library. 200 means the database answers and
# is at the schema this code expects; 503 (or no answer) makes urlopen raise, so exit 1.
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('STEPWISE_PORT', '8000'), timeout=8)"]

# Port: STEPWISE_PORT (default 8000). Listen on every interface so the proxy can reach it.
CMD ["stepwise", "serve", "--host", "0.0.0.0"]
