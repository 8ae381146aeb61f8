"""Sign-in and sign-out over HTTP: the only place a password is accepted."""

from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import get_token
from ninja import Router, Schema

from accounts import actions
from core.api_schemas.accounts import Account, LoginBody, SignedOut
from core.api_schemas.common import answers
from rounds.http import AuthedRequest, check_first_party

router = Router(tags=["auth"])


class LoginIn(Schema):
    username: str
    password: str


@router.post("/login", auth=None, response=answers(LoginBody))
async def login(request: HttpRequest, body: LoginIn) -> dict[str, Any]:
    """Gives a session cookie (browsers) and a bearer token (API clients)."""
    check_first_party(request)
    result = await actions.do_login(request, body.username[:150], body.password[:1024])
    result["csrf_token"] = get_token(request)
    return result


@router.post("/logout", response=answers(SignedOut))
def logout(request: AuthedRequest) -> dict[str, bool]:
    """Revokes this login's token and session and closes its sockets."""
    actions.do_logout(request, request.auth)
    return {"signed_out": True}


@router.get("/me", response=answers(Account))
def me(request: AuthedRequest) -> dict[str, Any]:
    return actions.user_data(request.auth.user)
