"""The push routes' response bodies (push/api.py); the same base as core/api_schemas."""

from core.api_schemas.common import Body


class PushKey(Body):
    """The VAPID public key: an uncompressed P-256 point, base64url."""

    key: str


class PushSubscription(Body):
    """A device's subscription as its owner sees it: the push service's host, not the
    endpoint; `created` is false when the same subscription was already there."""

    id: int
    push_host: str
    created_at: str
    created: bool


class Unsubscribed(Body):
    removed: bool


class PushPreferences(Body):
    """Quiet mode: routine pushes held back while the user holds no on-call shift."""

    quiet_off_duty: bool
    on_duty: bool
