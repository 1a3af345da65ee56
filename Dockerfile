# Image for the worker and the API (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY em_service ./em_service
COPY geofences ./geofences
COPY simulator ./simulator
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/em em
USER em
ENV EM_STATE_DIR=/var/lib/em/state
ENTRYPOINT ["em-service"]
