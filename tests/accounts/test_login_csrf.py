"""Login CSRF (issue 17): a page on another site must not sign a victim's browser into the
attacker's account.

The attack: a cross-site `text/plain` POST (no CORS preflight) with the attacker's
credentials was answered 200 with a `sessionid` cookie. A sign-in now takes only
JSON, and a browser request from an origin not in ROUNDS_ALLOWED_ORIGINS (or that
the browser marks `Sec-Fetch-Site: cross-site`) is refused with a typed 403 before
any password is checked. API clients send no Origin and still sign in.
"""

import json

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import AuthSession
from tests.support import PASSWORD
from tests.support.api import assert_refused

pytestmark = pytest.mark.django_db

LOGIN = "/api/auth/login"
EVIL = "https://evil.example"


def sign_in(content_type: str = "application/json", **headers: str):
    body = json.dumps({"username": "surgeon_bob", "password": PASSWORD})
    return Client().post(LOGIN, body, content_type=content_type, **headers)


def assert_no_login(response) -> None:
    assert "sessionid" not in response.cookies
    assert not AuthSession.objects.exists()


def test_a_cross_site_text_plain_sign_in_is_refused(hospital):
    response = sign_in("text/plain", HTTP_ORIGIN=EVIL, HTTP_SEC_FETCH_SITE="cross-site")
    body = assert_refused(response, 403, "forbidden")
    assert "other sites" in body["message"]
    assert_no_login(response)


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ORIGIN": EVIL},
        {"HTTP_ORIGIN": "null"},  # a sandboxed frame, a data: page
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        {"HTTP_ORIGIN": settings.ROUNDS_ALLOWED_ORIGINS[0], "HTTP_SEC_FETCH_SITE": "cross-site"},
    ],
)
def test_a_json_sign_in_from_another_origin_is_refused(hospital, headers):
    response = sign_in(**headers)
    assert_refused(response, 403, "forbidden")
    assert_no_login(response)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_sign_in_that_is_not_json_is_refused_even_without_an_origin(hospital, content_type):
    """Older browsers send no Origin on a same-site form: the content type still stops it."""
    response = sign_in(content_type)
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("invalid_request", "invalid_json")
    assert_no_login(response)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # the Python client, curl
        {"HTTP_ORIGIN": settings.ROUNDS_ALLOWED_ORIGINS[0], "HTTP_SEC_FETCH_SITE": "same-origin"},
        {"HTTP_ORIGIN": settings.ROUNDS_ALLOWED_ORIGINS[-1]},
    ],
)
def test_the_app_and_api_clients_still_sign_in(hospital, headers):
    response = sign_in(**headers)
    assert response.status_code == 200, response.content
    assert response.json()["token"]
    assert "sessionid" in response.cookies


def test_json_with_a_charset_is_json(hospital):
    assert sign_in("application/json; charset=utf-8").status_code == 200


def test_a_refused_cross_site_sign_in_counts_no_failure(hospital):
    """Refused before the password is read: a page elsewhere cannot lock a user out."""
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        assert sign_in(HTTP_ORIGIN=EVIL).status_code == 403
    assert not AccessAttempt.objects.exists()
    assert sign_in().status_code == 200
