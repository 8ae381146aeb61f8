"""The answer django-axes gives when a (username, IP) is locked: JSON 429."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse


def lockout_response(
    request: HttpRequest, original_response: object = None, credentials: object = None
) -> JsonResponse:
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    response = JsonResponse(
        {
            "code": "locked_out",
            "message": (
                "Too many failed sign-ins: this account is locked from this address "
                f"for {seconds // 60} minutes."
            ),
            "data": {"retry_after_seconds": seconds},
        },
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
