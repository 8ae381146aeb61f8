"""Push subscriptions and the quiet mode over HTTP: thin views over push.subscriptions,
mounted under /api/push (rounds/http.py, docs/push.md)."""

from typing import Any

from ninja import Router, Schema
from pydantic import Field

from core.api_schemas.common import answers
from push import subscriptions
from push.schemas import PushKey, PushPreferences, PushSubscription, Unsubscribed
from push.vapid import public_key
from rounds.http import AuthedRequest

router = Router(tags=["push"])


class KeysIn(Schema):
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)


class SubscriptionIn(Schema):
    """What PushSubscription.toJSON() gives (expirationTime is not used)."""

    endpoint: str = Field(max_length=2000)
    keys: KeysIn
    expirationTime: int | None = None  # the browser's own name


class EndpointIn(Schema):
    endpoint: str = Field(max_length=2000)


class PreferencesIn(Schema):
    quiet_off_duty: bool


@router.get("/key", response=answers(PushKey))
def key(request: AuthedRequest) -> dict[str, str]:
    """The VAPID public key, PushManager.subscribe's applicationServerKey."""
    return {"key": public_key()}


@router.post("/subscriptions", response=answers(PushSubscription))
def subscribe(request: AuthedRequest, body: SubscriptionIn) -> dict[str, Any]:
    return subscriptions.check_subscribe(
        request.auth, body.endpoint, body.keys.p256dh, body.keys.auth
    )


@router.delete("/subscriptions", response=answers(Unsubscribed))
def unsubscribe(request: AuthedRequest, body: EndpointIn) -> dict[str, Any]:
    return subscriptions.check_unsubscribe(request.user, body.endpoint)


@router.get("/preferences", response=answers(PushPreferences))
def preferences(request: AuthedRequest) -> dict[str, Any]:
    return subscriptions.preferences(request.user)


@router.put("/preferences", response=answers(PushPreferences))
def set_preferences(request: AuthedRequest, body: PreferencesIn) -> dict[str, Any]:
    return subscriptions.check_set_preferences(request.user, body.quiet_off_duty)
