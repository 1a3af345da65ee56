# Image for the worker and the API (used by docker-compose.yml). Installs from the runtime lock.
FROM python:3.11-slim
WORKDIR /app
COPY requirements ./requirements
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY em_service ./em_service
COPY geofences ./geofences
COPY simulator ./simulator
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && useradd --system --home /var/lib/em em
USER em
ENV EM_STATE_DIR=/var/lib/em/state
ENTRYPOINT ["em-service"]
