"""A JSON body over Django's DATA_UPLOAD_MAX_MEMORY_SIZE gets a typed 413 on every JSON
route (after authentication on the signed-in ones), never Django's HTML 400."""

import json

import pytest
from django.conf import settings
from django.test import Client

from tests.support import issue_token

pytestmark = pytest.mark.django_db

TOO_BIG = json.dumps({"ceremony": "x", "credential": {"id": "a" * 3_000_000}})


@pytest.mark.parametrize(
    ("path", "signed_in"),
    [
        ("/api/auth/login", False),
        ("/api/auth/login/passkey", False),
        ("/api/threads", True),
        ("/api/patients/search", True),
    ],
)
def test_an_oversized_json_body_is_refused_typed(hospital, path, signed_in):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(hospital.nurse_alice)}"}
    response = Client().post(
        path, TOO_BIG, content_type="application/json", **(headers if signed_in else {})
    )
    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "upload_too_large"
    assert body["data"] == {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
