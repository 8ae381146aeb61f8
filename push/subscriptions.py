"""Subscribing a device to pushes, unsubscribing it, and the quiet mode (docs/push.md).

Every change is audited in its transaction. The audit trail names the push
service's host only: an endpoint is a capability URL (whoever holds it may
address pushes to that browser, with the keys), so it stays in its own table.
"""

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuthSession, User
from audit.actions import record
from core.errors import N_, Conflict, InvalidRequest, NotFound
from push.models import MAX_ENDPOINT, PushPreference, PushSubscription
from push.vapid import b64url_decode

P256_POINT_BYTES = 65  # 0x04 || X || Y (RFC 8291 §3.2)
AUTH_SECRET_BYTES = 16  # RFC 8291 §3.2
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def push_host(endpoint: str) -> str:
    """What the audit trail and the logs may name: the push service's host."""
    return urlsplit(endpoint).hostname or ""


def known_push_service(host: str) -> bool:
    """Whether `host` is one of ROUNDS_PUSH_SERVICES (an entry with a leading dot covers
    the hosts under it, never the bare name tacked onto another domain)."""
    host = host.lower().rstrip(".")
    for entry in (entry.lower() for entry in settings.ROUNDS_PUSH_SERVICES):
        if entry.startswith(".") and host.endswith(entry):
            return True
        if host == entry:
            return True
    return False


def check_endpoint(endpoint: str) -> str:
    """An https URL of a known push service (ROUNDS_PUSH_SERVICES: the server POSTs there,
    so no other host); http only on this machine, and only where the tests' receiver is
    allowed (ROUNDS_PUSH_ALLOW_LOCAL_ENDPOINTS)."""
    if len(endpoint) > MAX_ENDPOINT:
        raise InvalidRequest(N_("The push endpoint is too long."))
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        parts, port = None, None
    host = parts.hostname if parts else None
    if parts is None or not host or parts.username or parts.password or port == 0:
        raise InvalidRequest(N_("The push endpoint is not a URL Rounds can send to."))
    local = parts.scheme == "http" and host in LOCAL_HOSTS
    if local and settings.ROUNDS_PUSH_ALLOW_LOCAL_ENDPOINTS:
        return endpoint
    if parts.scheme != "https":
        raise InvalidRequest(N_("The push endpoint must be an https URL."))
    if not known_push_service(host):
        raise InvalidRequest(
            N_("The push endpoint is not a push service this hospital allows."),
            data={"host": host},
        )
    return endpoint


def check_keys(p256dh: str, auth: str) -> None:
    """The subscription's keys as RFC 8291 needs them: a P-256 point and a 16-byte secret."""
    try:
        point, secret = b64url_decode(p256dh), b64url_decode(auth)
    except ValueError:
        raise InvalidRequest(N_("The subscription's keys are not base64url.")) from None
    if len(point) != P256_POINT_BYTES or point[0] != 4:
        raise InvalidRequest(N_("The p256dh key is not an uncompressed P-256 point."))
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidRequest(N_("The p256dh key is not an uncompressed P-256 point.")) from None
    if len(secret) != AUTH_SECRET_BYTES:
        raise InvalidRequest(N_("The auth secret must be 16 bytes."))


def subscription_data(subscription: PushSubscription, created: bool) -> dict[str, Any]:
    return {
        "id": subscription.pk,
        "push_host": push_host(subscription.endpoint),
        "created_at": subscription.created_at.isoformat(),
        "created": created,
    }


def check_subscribe(
    auth_session: AuthSession, endpoint: str, p256dh: str, auth: str
) -> dict[str, Any]:
    check_endpoint(endpoint)
    check_keys(p256dh, auth)
    return do_subscribe(auth_session, endpoint, p256dh, auth)


def do_subscribe(
    auth_session: AuthSession, endpoint: str, p256dh: str, auth: str
) -> dict[str, Any]:
    """Bind the endpoint to this login: idempotent, and one endpoint per login.

    An endpoint standing for another login is the same browser subscription
    after a sign-in that did not sign the previous one out (a session that
    expired, a shared computer). It is re-bound only when the keys match too:
    they are known only to the browser that holds the subscription, so a caller
    who learned an endpoint alone cannot silence someone else's phone.
    Raises Conflict when the endpoint stands for another browser's keys.
    """
    user = auth_session.user
    now = timezone.now()
    with transaction.atomic():
        standing = PushSubscription.objects.select_for_update().standing().filter(endpoint=endpoint)
        current = standing.first()
        if current is not None and current.auth_session_id == auth_session.pk:
            if (current.p256dh, current.auth) != (p256dh, auth):
                raise Conflict(N_("This push endpoint is registered with other keys."))
            return subscription_data(current, created=False)
        rebound_from: int | None = None
        if current is not None:
            if (current.p256dh, current.auth) != (p256dh, auth):
                raise Conflict(N_("This push endpoint is registered with other keys."))
            rebound_from = current.user_id
            _retire(standing, PushSubscription.Removal.REBOUND, now)
        # A browser holds one subscription per service worker: a new endpoint from this
        # login means the one before it is dead.
        _retire(
            PushSubscription.objects.standing().filter(auth_session=auth_session),
            PushSubscription.Removal.REPLACED,
            now,
        )
        subscription = PushSubscription.objects.create(
            user=user, auth_session=auth_session, endpoint=endpoint, p256dh=p256dh, auth=auth
        )
        data: dict[str, Any] = {"push_host": push_host(endpoint), "auth_session": auth_session.pk}
        if rebound_from is not None:
            data["rebound_from_user"] = rebound_from
        record(
            "push.subscribed",
            actor=user,
            object_type="push_subscription",
            object_id=subscription.pk,
            data=data,
        )
    return subscription_data(subscription, created=True)


def _retire(rows: Any, removal: str, now: Any) -> None:
    rows.update(removed_at=now, removal=removal)


def check_unsubscribe(user: User, endpoint: str) -> dict[str, Any]:
    """Remove the caller's own subscription to `endpoint`; someone else's, a removed one
    and an unknown one are alike not found."""
    with transaction.atomic():
        subscription = (
            PushSubscription.objects.select_for_update()
            .standing()
            .filter(user=user, endpoint=endpoint[:MAX_ENDPOINT])
            .first()
        )
        if subscription is None:
            raise NotFound()
        subscription.removed_at = timezone.now()
        subscription.removal = PushSubscription.Removal.UNSUBSCRIBED
        subscription.save(update_fields=["removed_at", "removal"])
        record(
            "push.unsubscribed",
            actor=user,
            object_type="push_subscription",
            object_id=subscription.pk,
            data={"push_host": push_host(subscription.endpoint), "reason": "unsubscribed"},
        )
    return {"removed": True}


def do_remove_for_session(auth_session_id: int, actor: User | None) -> int:
    """Signing out removes the login's subscriptions (already never used: models.live).

    Returns:
        How many were removed.
    """
    with transaction.atomic():
        rows = list(
            PushSubscription.objects.select_for_update()
            .standing()
            .filter(auth_session_id=auth_session_id)
        )
        if not rows:
            return 0
        PushSubscription.objects.filter(pk__in=[row.pk for row in rows]).update(
            removed_at=timezone.now(), removal=PushSubscription.Removal.SIGNED_OUT
        )
        for row in rows:
            record(
                "push.unsubscribed",
                actor=actor,
                object_type="push_subscription",
                object_id=row.pk,
                data={"push_host": push_host(row.endpoint), "reason": "signed_out"},
            )
    return len(rows)


# --- Quiet mode ------------------------------------------------------------------------


def preferences(user: User) -> dict[str, Any]:
    from push.duty import on_duty_user_ids

    quiet = (
        PushPreference.objects.filter(user=user).values_list("quiet_off_duty", flat=True).first()
    )
    return {
        "quiet_off_duty": bool(quiet),
        "on_duty": user.pk in on_duty_user_ids([user.pk], timezone.now()),
    }


def check_set_preferences(user: User, quiet_off_duty: bool) -> dict[str, Any]:
    with transaction.atomic():
        preference, _ = PushPreference.objects.select_for_update().get_or_create(user=user)
        if preference.quiet_off_duty != quiet_off_duty:
            preference.quiet_off_duty = quiet_off_duty
            preference.save(update_fields=["quiet_off_duty", "updated_at"])
            record(
                "push.preferences_changed",
                actor=user,
                object_type="user",
                object_id=user.pk,
                data={"quiet_off_duty": quiet_off_duty},
            )
    return preferences(user)
