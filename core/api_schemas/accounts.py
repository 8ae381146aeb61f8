"""Sign-in (accounts/api.py) and the key directory (accounts/keys_api.py)."""

from typing import Any

from core.api_schemas.common import Body, PublicKey


class Account(Body):
    """The signed-in user (`GET /api/auth/me`), and who a login is for."""

    id: int
    username: str
    display_name: str
    is_compliance_officer: bool
    is_admin: bool


class LoginBody(Body):
    """A new login: the bearer token for API clients, when it expires, who it is, and the
    CSRF token a browser sends back on unsafe methods (the session cookie is set too)."""

    token: str
    expires_at: str
    user: Account
    csrf_token: str


class SignedOut(Body):
    """The login's token and session are revoked, its sockets closed."""

    signed_out: bool


class Device(Body):
    """A live login of the caller (`GET /api/auth/devices`): `created_at` is when it was
    first seen (its sign-in), `current` marks the one asking."""

    id: int
    device_name: str
    created_at: str
    last_seen_at: str
    ip: str | None
    current: bool


class DevicesRevoked(Body):
    """How many logins were revoked, their sockets closed and push subscriptions dropped."""

    revoked: int


class Identity(Body):
    """A user's published identity: the key to wrap for and to check signatures with."""

    user: int
    fingerprint: str
    public: PublicKey
    published_at: str


class IdentityLookup(Identity):
    """An identity as fetched: a replaced one (`?fingerprint=`) says since when."""

    replaced_at: str | None


class BackupStored(Body):
    """The caller's encrypted key backup was kept."""

    updated_at: str


class Backup(Body):
    """The caller's encrypted key backup (base64), opaque to the server."""

    blob: str
    updated_at: str


class InstitutionKey(Body):
    """The institution's admin or compliance public key; its private half stays offline."""

    kind: str
    fingerprint: str
    public: PublicKey
    set_at: str


class InstitutionKeys(Body):
    """The institution's current keys, each None until an administrator sets it."""

    admin: InstitutionKey | None
    compliance: InstitutionKey | None


class PasskeyCeremony(Body):
    """A passkey ceremony's challenge: `options` go to `navigator.credentials.create` or
    `.get` (base64url fields, as py_webauthn writes them); `ceremony` comes back with
    the browser's answer."""

    ceremony: str
    options: dict[str, Any]


class TotpSetup(Body):
    """An authenticator app to set up: the secret to type, or the QR code (an SVG data
    URI of `otpauth_uri`) to scan; confirmed by the first code it shows."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class BackupCodes(Body):
    """One-time backup codes, shown this once (none when the user still has some)."""

    backup_codes: list[str]


class LoginWithBackupCodes(LoginBody):
    """A login finished by setting up a first second factor, with its backup codes."""

    backup_codes: list[str]


class PasskeyCard(Body):
    id: int
    name: str
    created_at: str
    last_used_at: str | None
    backed_up: bool


class PasskeyAdded(Body):
    passkey: PasskeyCard
    backup_codes: list[str]


class SecondFactors(Body):
    """The caller's second factors (`GET /api/auth/second-factor`): `required` when the
    institution requires one for their role."""

    required: bool
    totp: bool
    passkeys: list[PasskeyCard]
    backup_codes_left: int
