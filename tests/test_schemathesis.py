"""Schemathesis against the JSON API's own OpenAPI schema, as a signed-in clinician.

Every operation gets requests built from its schema, valid ones and invalid ones
(wrong types, missing fields, out-of-range values), sent through Django's WSGI
handler. None may answer 5xx; every 4xx is a typed error (`{"code", "message"}`
with a code of core/errors.py); every answer matches the response the schema
declares for its status.

The default run is short (CI: 4 examples an operation, about 300 requests, a few
seconds); a long one, without pyproject.toml's 120 seconds a test:

    ROUNDS_FUZZ_HTTP_EXAMPLES=200 .venv/bin/pytest --timeout=0 tests/test_schemathesis.py
"""

import os
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from core.errors import ErrorCode
from tests.support.api import Api, assert_refused, issue_token

EXAMPLES = int(os.environ.get("ROUNDS_FUZZ_HTTP_EXAMPLES", "4"))
TYPED_CODES = {code.value for code in ErrorCode}


def load_schema() -> Any:
    from rounds.urls import api

    return schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api"))


def check_typed_error(response: Any) -> None:
    if response.status_code < 400:
        return
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("code") in TYPED_CODES, body
    assert isinstance(body.get("message"), str), body


def fuzz_operation(operation: Any, app: Any, user: Any) -> None:
    """A few cases of one operation, valid and invalid alike."""
    cases = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: Any) -> None:
        # A token per request: the operations include signing out and revoking devices.
        headers = {"Authorization": f"Bearer {issue_token(user)}"}
        response = case.call(app=app, headers=headers)
        case.validate_response(
            response, checks=[not_a_server_error, response_schema_conformance], headers=headers
        )
        check_typed_error(response)

    run()


def operations() -> list[Any]:
    return [result.ok() for result in load_schema().get_all_operations()]


# Committed data (live_hospital): Django's WSGI handler closes the database connection
# after each request, which would end a test's enclosing transaction.
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_operation_answers_typed(live_hospital):
    app = get_wsgi_application()
    failures = {}
    for operation in operations():
        try:
            fuzz_operation(operation, app, live_hospital.surgeon_bob)
        except (Exception, BaseExceptionGroup) as failure:  # every broken route in one run
            failures[operation.label] = str(failure)
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())


# --- What the fuzzing found, kept as the minimal failing cases -----------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", f"/api/departments/{2**64}/threads"),
        ("get", f"/api/departments/-{2**80}/keys"),
        ("delete", f"/api/library/departments/{2**70}/reviews/2026-W01/patients/1"),
    ],
)
@pytest.mark.django_db
def test_an_id_past_64_bits_is_refused_typed(hospital, method, path):
    """SQLite cannot bind it (it was a 500); PostgreSQL looks it up and finds nothing."""
    from django.db import connection

    response = getattr(Api(hospital.surgeon_bob), method)(path)
    if connection.vendor == "sqlite":
        assert_refused(response, 400, "invalid_request")
    else:
        assert_refused(response, 404, "not_found")
