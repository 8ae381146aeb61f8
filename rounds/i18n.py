"""The server's one translation point (docs/i18n.md, "The server").

An error is raised with its English msgid (marked `N_()` in core/errors.py) and
the values of its placeholders; it is translated here, when an edge turns it
into an answer: an HTTP response (LocaleMiddleware has activated the
request's language) or a socket's error frame (the language the handshake
chose, activated by the consumer). Raising in English and translating once
matters on the socket: a batch of posts is stored for several sockets at a
time, each with its own language, so nothing below the edge knows whose
language to use.
"""

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from django.utils import translation

from core.errors import RoundsError


def error_body(error: RoundsError) -> dict[str, Any]:
    """The error as its client reads it, its message in the active language."""
    return error.as_dict(translation.gettext)


def scope_language(scope: Mapping[str, Any]) -> str:
    """The language of a socket, chosen once at its handshake: the language cookie,
    else the upgrade request's Accept-Language, else LANGUAGE_CODE.

    A WebSocket frame carries no headers, so this choice holds for the connection.
    The rules are Django's own for an HTTP request (LocaleMiddleware's), applied to
    the handshake's cookies and headers, so a page and its socket agree.
    """
    request = HttpRequest()
    request.COOKIES = dict(scope.get("cookies") or {})
    for name, value in scope.get("headers") or []:
        if name == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
    return translation.get_language_from_request(request)
