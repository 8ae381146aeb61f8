"""A persona's API client and bearer token, without paying for a password check."""

from datetime import timedelta
from typing import Any

from django.utils import timezone


def issue_token(user) -> str:
    """A bearer token as a login would give, without paying for a password check."""
    from django.conf import settings

    from accounts.models import AuthSession, hash_token, new_token

    token = new_token()
    AuthSession.objects.create(
        user=user,
        token_hash=hash_token(token),
        expires_at=timezone.now() + timedelta(seconds=settings.ROUNDS_TOKEN_SECONDS),
    )
    return token


class Api:
    """A bearer-token JSON API client for one persona, as one device."""

    def __init__(self, user: Any) -> None:
        from django.test import Client

        self.user = user
        self.client = Client()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user)}"}

    def get(self, path: str, **headers: str):
        """`headers` as Django's test client names them (`HTTP_X_ROUNDS_CASE`)."""
        return self.client.get(path, **self.auth, **headers)

    def post(self, path: str, body: dict[str, Any]):
        return self.client.post(path, body, content_type="application/json", **self.auth)

    def put(self, path: str, body: dict[str, Any]):
        return self.client.put(path, body, content_type="application/json", **self.auth)

    def delete(self, path: str):
        return self.client.delete(path, **self.auth)


def assert_refused(response: Any, status: int, code: str) -> dict[str, Any]:
    """An HTTP refusal: its status, its typed code and a message; its body, for more checks."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["message"], body
    return body
