"""A user's own second factors from the Python client (docs/sign-in.md).

Signing in with them is in client/transport.py (`login(code=…)`, `finish_login`,
`login_with_passkey`). Here a user sets up an authenticator app or a passkey,
lists, removes them (with the password again), and makes new backup codes. A
passkey needs an authenticator: a function that answers WebAuthn's options
(JSON, base64url) with the credential as JSON (python-fido2 with a security key).
"""

from collections.abc import Callable
from typing import Any, Protocol

Authenticator = Callable[[dict[str, Any]], dict[str, Any]]


class _Host(Protocol):
    async def call(self, method: str, path: str, *, json: Any = None) -> Any: ...


class FactorsMixin:
    """`RoundsClient`'s calls on the user's own second factors."""

    async def second_factors(self: _Host) -> dict[str, Any]:
        """`{required, totp, passkeys, backup_codes_left}`."""
        result: dict[str, Any] = await self.call("GET", "/api/auth/second-factor")
        return result

    async def set_up_totp(self: _Host) -> dict[str, str]:
        """A new app secret (`secret`, `otpauth_uri`, `qr_svg`), confirmed by `confirm_totp`."""
        result: dict[str, str] = await self.call("POST", "/api/auth/second-factor/totp")
        return result

    async def confirm_totp(self: _Host, code: str) -> list[str]:
        """Confirm the app with a code it shows; the backup codes when it is the first factor."""
        body = {"code": code}
        result = await self.call("POST", "/api/auth/second-factor/totp/confirm", json=body)
        codes: list[str] = result["backup_codes"]
        return codes

    async def add_passkey(self: _Host, authenticator: Authenticator, name: str) -> dict[str, Any]:
        """Register a passkey made by `authenticator`: `{passkey, backup_codes}`."""
        options = await self.call("POST", "/api/auth/second-factor/passkeys/options")
        body = {
            "ceremony": options["ceremony"],
            "credential": authenticator(options["options"]),
            "name": name,
        }
        result: dict[str, Any] = await self.call(
            "POST", "/api/auth/second-factor/passkeys", json=body
        )
        return result

    async def remove_totp(self: _Host, password: str) -> dict[str, Any]:
        body = {"password": password}
        result: dict[str, Any] = await self.call(
            "POST", "/api/auth/second-factor/totp/remove", json=body
        )
        return result

    async def remove_passkey(self: _Host, passkey_id: int, password: str) -> dict[str, Any]:
        path = f"/api/auth/second-factor/passkeys/{passkey_id}/remove"
        result: dict[str, Any] = await self.call("POST", path, json={"password": password})
        return result

    async def new_backup_codes(self: _Host, password: str) -> list[str]:
        """Ten new one-time codes; the old ones stop working."""
        body = {"password": password}
        result = await self.call("POST", "/api/auth/second-factor/backup-codes", json=body)
        codes: list[str] = result["backup_codes"]
        return codes
