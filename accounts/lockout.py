"""The answer django-axes gives when a (username, IP) is locked: JSON 429."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from core.errors import N_, ErrorCode, RoundsError
from rounds.i18n import error_body


def lockout_response(
    request: HttpRequest, original_response: object = None, credentials: object = None
) -> JsonResponse:
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    refusal = RoundsError(
        N_(
            "Too many failed sign-ins: this account is locked from this address "
            "for %(minutes)s minutes."
        ),
        code=ErrorCode.LOCKED_OUT,
        data={"retry_after_seconds": seconds},
        params={"minutes": seconds // 60},
    )
    response = JsonResponse(error_body(refusal), status=429)
    response["Retry-After"] = str(seconds)
    return response


class LockedOut(RoundsError):
    code = ErrorCode.LOCKED_OUT
    default_message = N_("Too many failed sign-ins: this account is locked from this address.")


def lockout_data() -> dict[str, int]:
    return {"retry_after_seconds": int(settings.AXES_COOLOFF_TIME.total_seconds())}
