"""Signing out removes the subscriptions of that login (docs/push.md).

Hooked on Django's `user_logged_out`, which accounts.actions.do_logout sends
through `logout(request)` after revoking the login, and on
`accounts.devices.device_revoked` (a device revoked from the device list, by an
administrator or for idleness), so that accounts (lower in the apps' order,
tests/test_layers.py) need not import push. The API edge has
put the AuthSession on `request.auth`. Whatever path ends a login, a
subscription of a login that is no longer open is never pushed to
(PushSubscription.objects.live); this hook retires the rows and audits it.
"""

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.devices import device_revoked
from accounts.models import AuthSession, User
from push.subscriptions import do_remove_for_session


@receiver(user_logged_out, dispatch_uid="rounds-push-sign-out")
def remove_on_sign_out(
    sender: object, request: HttpRequest | None, user: Any = None, **kwargs: Any
) -> None:
    auth_session = getattr(request, "auth", None)
    if isinstance(auth_session, AuthSession):
        do_remove_for_session(auth_session.pk, user if user is not None else auth_session.user)


@receiver(device_revoked, dispatch_uid="rounds-push-device-revoked")
def remove_on_device_revoked(
    sender: object, auth_session: AuthSession, by: User | None = None, **kwargs: Any
) -> None:
    """A device revoked by its user, an administrator or the idle timeout (accounts/devices.py)."""
    do_remove_for_session(auth_session.pk, by)
