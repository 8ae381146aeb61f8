"""Signing in with a second factor from tests: the steps as a client takes them."""

from datetime import datetime
from typing import Any

import pyotp
from django.test import Client
from django.utils import timezone

from tests.support import PASSWORD
from tests.support.authenticator import SoftAuthenticator

# An allowed origin that is a name, so passkeys work there (an address is no relying party).
ORIGIN = "http://localhost:8000"
FROM_PAGE = {"HTTP_ORIGIN": ORIGIN}


def post(client: Client, path: str, body: dict[str, Any] | None = None, **extra: Any) -> Any:
    return client.post(path, body or {}, content_type="application/json", **{**FROM_PAGE, **extra})


def password_step(client: Client, username: str, **extra: Any) -> Any:
    return post(client, "/api/auth/login", {"username": username, "password": PASSWORD}, **extra)


def pending_of(response: Any) -> str:
    assert response.status_code == 401, response.content
    token: str = response.json()["data"]["pending"]
    return token


def wrong_code(secret: str, at: datetime | None = None) -> str:
    """Six digits that no step the server accepts now gives."""
    totp = pyotp.TOTP(secret)
    now = totp.timecode(at or timezone.now())
    right = {totp.generate_otp(step) for step in (now - 1, now, now + 1)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in right)


def code_at(secret: str, steps: int = 0) -> str:
    """The app's code `steps` time steps from now (the server takes -1, 0 and +1)."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(timezone.now()) + steps)


def set_up_app(client: Client) -> tuple[str, list[str]]:
    """A signed-in client sets up an authenticator app: its secret and backup codes.

    It is confirmed with the previous step's code, so the current one (`.now()`) still
    signs in: a code is taken once."""
    setup = post(client, "/api/auth/second-factor/totp").json()
    confirmed = post(
        client, "/api/auth/second-factor/totp/confirm", {"code": code_at(setup["secret"], -1)}
    )
    assert confirmed.status_code == 200, confirmed.content
    return setup["secret"], confirmed.json()["backup_codes"]


def add_passkey(client: Client, authenticator: SoftAuthenticator, name: str = "Phone") -> Any:
    options = post(client, "/api/auth/second-factor/passkeys/options").json()
    return post(
        client,
        "/api/auth/second-factor/passkeys",
        {
            "ceremony": options["ceremony"],
            "credential": authenticator.create(options["options"]),
            "name": name,
        },
    )


def passkey_sign_in(
    client: Client, authenticator: SoftAuthenticator, pending: str | None = None
) -> Any:
    body = {"pending": pending} if pending else {}
    options = post(client, "/api/auth/login/passkey/options", body).json()
    return post(
        client,
        "/api/auth/login/passkey",
        {"ceremony": options["ceremony"], "credential": authenticator.get(options["options"])},
    )
