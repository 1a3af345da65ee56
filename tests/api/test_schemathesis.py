"""Property-based run of the OpenAPI schema (schemathesis, in-process ASGI, real DB and broker):
with valid tokens no operation answers 5xx or breaks its documented schema. Kept small."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.python import asgi

from em_service.api.main import create_app
from em_service.settings import Settings
from tests.api.conftest import seed
from tests.store.factories import fresh_db

pytestmark = pytest.mark.kafka
#: Small by default so the suite stays fast; raise it for a deeper run.
MAX_EXAMPLES = int(os.environ.get("EM_TEST_SCHEMA_EXAMPLES", "10"))

#: Everything about the contract. Not ``positive_data_acceptance``: some rules cannot be said in
#: JSON Schema (``to`` after ``from``, path id = body id, a sane time range) and answer 422.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.missing_required_header,
    checks.unsupported_method,
    checks.ignored_auth,
]

#: Which principal calls each path (the role that may use it; officer-1's caseload is off-1).
CALLER_BY_PREFIX = [
    ("/api/v1/offenders/{offender_id}/trail", "investigator"),
    ("/api/v1/offenders/{offender_id}/conditions", "admin"),
    ("/api/v1/offenders/{offender_id}/scene-matches", "investigator"),
    ("/api/v1/scenes", "investigator"),
    ("/api/v1/caseloads", "admin"),
    ("/api/v1/audit", "admin"),
    ("/metrics", "ops"),
    ("/api/v1", "officer"),
    ("/", "ops"),  # health: no token needed
]


@pytest.fixture(scope="module")
def api_schema(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> Iterator[schemathesis.BaseSchema]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    store = fresh_db(tmp, tmp / "em.db")
    tokens = seed(store)
    store.dispose()
    tag = uuid.uuid4().hex[:8]
    app = create_app(
        Settings(
            database_url=f"sqlite:///{tmp / 'em.db'}",
            state_dir=tmp,
            kafka_bootstrap=kafka_bootstrap,
            topic_conditions=f"t{tag}.conditions",
            topic_scenes=f"t{tag}.scenes",
            app_id=f"em-test-{tag}",
            # the checks send many requests without a token on purpose: no 429 in between
            api_auth_failures_max=1_000_000,
        )
    )
    app.state.test_tokens = tokens
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # The SSE stream never ends on its own; it has its own tests.
    yield schema.exclude(path="/api/v1/alerts/stream")
    asgi.shutdown_lifespans()


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """(method, path, mode) of every documented operation, read from the app without a
    database; negative mode only where there is something to get wrong."""
    doc = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path == "/api/v1/alerts/stream":
                continue  # never ends on its own; tested in test_sse_kafka and test_alerts_api
            out.append((method.upper(), path, GenerationMode.POSITIVE))
            if op.get("parameters") or op.get("requestBody"):
                out.append((method.upper(), path, GenerationMode.NEGATIVE))
    return out


@pytest.mark.parametrize(("method", "path", "mode"), _operations())
def test_api_conforms_to_its_schema(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    # (schemathesis' own pytest loader does not run on pytest 9, so drive Hypothesis directly)
    operation = api_schema[path][method]
    role = next(r for prefix, r in CALLER_BY_PREFIX if path.startswith(prefix))
    token = operation.app.state.test_tokens[role]
    headers = {} if path in ("/healthz", "/readyz") else {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
