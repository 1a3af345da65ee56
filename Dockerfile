# Image for the worker and the API (used by docker-compose.yml). Installs from the runtime lock.
# The console's front-end assets come from the npm lock (npm ci) in a build stage.
FROM node:22-slim AS console-assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY scripts/console_assets.sh ./scripts/
RUN mkdir -p em_service/console/static && bash scripts/console_assets.sh

FROM python:3.11-slim
WORKDIR /app
COPY requirements ./requirements
COPY scripts/install_lock.sh ./scripts/
RUN bash scripts/install_lock.sh requirements/runtime.txt --no-cache-dir
COPY pyproject.toml README.md ./
COPY em_service ./em_service
COPY geofences ./geofences
COPY simulator ./simulator
COPY --from=console-assets /src/em_service/console/static/vendor ./em_service/console/static/vendor
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && useradd --system --home /var/lib/em em
USER em
ENV EM_STATE_DIR=/var/lib/em/state
ENTRYPOINT ["em-service"]
