"""Sign-in and sign-out over HTTP: the only place a password is accepted."""

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from accounts import actions, devices
from core.api_schemas.accounts import Account, Device, DevicesRevoked, LoginBody, SignedOut
from core.api_schemas.common import answers
from rounds.http import AuthedRequest, check_first_party

router = Router(tags=["auth"])


class LoginIn(Schema):
    username: str
    password: str
    # The device's name in its user's device list; else read from its User-Agent.
    device: str | None = Field(default=None, max_length=devices.MAX_DEVICE_NAME)


@router.post("/login", auth=None, response=answers(LoginBody))
async def login(request: HttpRequest, body: LoginIn) -> dict[str, Any]:
    """Gives a session cookie (browsers) and a bearer token (API clients), or, when a
    second factor is due, 401 `second_factor_required` / `second_factor_setup_required`
    with the step's `pending` token (accounts/factors/api.py finishes it)."""
    check_first_party(request)
    return await actions.do_login(request, body.username[:150], body.password[:1024], body.device)


@router.post("/logout", response=answers(SignedOut))
def logout(request: AuthedRequest) -> dict[str, bool]:
    """Revokes this login's token and session and closes its sockets."""
    actions.do_logout(request, request.auth)
    return {"signed_out": True}


@router.get("/me", response=answers(Account))
def me(request: AuthedRequest) -> dict[str, Any]:
    return actions.user_data(request.auth.user)


@router.get("/devices", response=answers(list[Device]))
def list_devices(request: AuthedRequest) -> list[dict[str, Any]]:
    """The caller's signed-in devices, newest first."""
    return devices.list_devices(request.auth)


@router.delete("/devices/{device_id}", response=answers(DevicesRevoked))
def revoke_device(request: AuthedRequest, device_id: int) -> dict[str, int]:
    """Signs one of the caller's devices out (this one too), closing its sockets."""
    return devices.check_revoke_device(request.auth, device_id, actions.client_ip(request))


@router.post("/users/{user_id}/devices/revoke", response=answers(DevicesRevoked))
def revoke_all_devices(request: AuthedRequest, user_id: int) -> dict[str, int]:
    """An administrator signs a user out of every device."""
    return devices.check_revoke_all(request.user, user_id, actions.client_ip(request))
