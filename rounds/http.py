"""The JSON API's shell: authentication, CSRF, and typed errors.

Every endpoint authenticates with a bearer token (API clients) or a browser
session that points to a live login; unsafe methods on a session also need
Django's CSRF token, since a cookie is sent by any page the browser opens.
"""

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.utils import check_csrf

from accounts.actions import SESSION_KEY, resolve_session, resolve_token
from accounts.models import AuthSession, User
from core.errors import N_, ErrorCode, InvalidRequest, NotAuthenticated, NotFound, RoundsError
from rounds.i18n import error_body
from rounds.text import check_storable

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
HTTP_ERROR_CODES = {
    400: ErrorCode.INVALID_JSON,
    401: ErrorCode.NOT_AUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    429: ErrorCode.RATE_LIMITED,
}


class AuthedRequest(HttpRequest):
    """The type of a request `RoundsAuth` let through: `user` is the signed-in user.

    For annotations only (an edge's `request`); Django builds the requests.
    """

    user: User  # narrower than HttpRequest's: RoundsAuth set it
    auth: AuthSession  # what RoundsAuth returned, set by django-ninja


class CsrfFailed(RoundsError):
    code = ErrorCode.FORBIDDEN
    default_message = N_(
        "CSRF check failed: send the X-CSRFToken header with the csrftoken cookie."
    )


class CrossSiteSignIn(RoundsError):
    code = ErrorCode.FORBIDDEN
    default_message = N_("Sign in from Rounds itself: requests from other sites are refused.")


class JsonOnly(RoundsError):
    code = ErrorCode.INVALID_REQUEST
    default_message = N_("Send this request as JSON (Content-Type: application/json).")


def check_first_party(request: HttpRequest) -> None:
    """Refuse a browser request another site made (login CSRF), before any password check.

    No cookie protects a sign-in, so a page elsewhere could sign a victim's browser
    into the attacker's account with a form or a `text/plain` fetch. A browser names
    the page's origin on every POST (Origin) and says whether it is another site's
    (Sec-Fetch-Site); API clients send neither. And only JSON is taken: a browser
    sends JSON to another origin only after a CORS preflight, which Rounds never grants.
    """
    origin = request.headers.get("Origin")
    cross_site = request.headers.get("Sec-Fetch-Site") == "cross-site"
    if cross_site or (origin is not None and origin not in settings.ROUNDS_ALLOWED_ORIGINS):
        raise CrossSiteSignIn()
    if request.content_type != "application/json":
        raise JsonOnly()


CASE_HEADER = "X-Rounds-Case"
# An id, never so many digits that int() is asked to read thousands of them.
_CASE_ID = re.compile(r"[0-9]{1,18}")
# The header as the OpenAPI schema shows it, on every route that reads it (`openapi_extra`).
CASE_HEADER_DOC = {
    "parameters": [
        {
            "in": "header",
            "name": CASE_HEADER,
            "required": False,
            "schema": {"type": "integer"},
            "description": "A compliance officer's open case: the ground of this access.",
        }
    ]
}


class CaseInUrl(RoundsError):
    code = ErrorCode.INVALID_REQUEST
    default_message = N_("Send the case in the X-Rounds-Case header, never in the URL.")


def compliance_case(request: HttpRequest) -> int | None:
    """The case a compliance officer names as the ground of a read (X-Rounds-Case), if any.

    A header, because a URL reaches access logs, proxies and browser history; a
    `case` query parameter is refused, not ignored, so that no client keeps
    sending one and an officer is not silently read without their case.
    """
    if "case" in request.GET:
        raise CaseInUrl()
    raw = request.headers.get(CASE_HEADER, "").strip()
    if not raw:
        return None
    if not _CASE_ID.fullmatch(raw):
        raise InvalidRequest(N_("X-Rounds-Case is the id of one of your open cases."))
    return int(raw)


class RoundsAuth:
    """Sets request.user and returns the live AuthSession, or None (401)."""

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer":
            auth_session = resolve_token(token.strip())
        else:
            auth_session = resolve_session(
                request.session.get(SESSION_KEY), request.session.session_key
            )
            unsafe = auth_session is not None and request.method not in SAFE_METHODS
            if unsafe and check_csrf(request) is not None:
                raise CsrfFailed()
        if auth_session is not None:
            request.user = auth_session.user
        return auth_session


class StorableParser(Parser):
    """Ninja's JSON and query parsing, then one check for text no database can store."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = super().parse_body(request)
        check_storable(data)
        return data

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        parsed = super().parse_querydict(data, list_fields, request)
        check_storable(parsed)
        return parsed


def build_api() -> NinjaAPI:
    api = NinjaAPI(
        title="Rounds API",
        version="1",
        auth=RoundsAuth(),
        urls_namespace="api",
        docs_url="/docs",
        parser=StorableParser(),
    )

    @api.exception_handler(RoundsError)
    def rounds_error(request: HttpRequest, exc: RoundsError) -> HttpResponse:
        return api.create_response(request, error_body(exc), status=exc.http_status)

    @api.exception_handler(NinjaValidationError)
    def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        problems = [
            {"field": ".".join(str(p) for p in err.get("loc", [])[1:]), "problem": err.get("msg")}
            for err in exc.errors
        ]
        refusal = RoundsError(
            N_("The request does not match its schema."), data={"errors": problems}
        )
        return rounds_error(request, refusal)

    @api.exception_handler(AuthenticationError)
    def not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return rounds_error(request, NotAuthenticated())

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # Ninja's own refusals (an unparsable body, chiefly) in Rounds' error shape.
        if isinstance(exc.__cause__, RoundsError):  # the parser's own typed refusal
            return rounds_error(request, exc.__cause__)
        code = HTTP_ERROR_CODES.get(exc.status_code, ErrorCode.INVALID_REQUEST)
        body = {"code": code.value, "message": str(exc)}
        return api.create_response(request, body, status=exc.status_code)

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return rounds_error(request, NotFound())

    @api.exception_handler(RequestDataTooBig)
    def body_too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        # A JSON body over DATA_UPLOAD_MAX_MEMORY_SIZE (photos go in chunks, never as JSON).
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        refusal = RoundsError(
            N_("The request body is over %(limit)s bytes."),
            code=ErrorCode.UPLOAD_TOO_LARGE,
            data={"max_bytes": limit},
            params={"limit": limit},
        )
        return rounds_error(request, refusal)

    @api.exception_handler(OverflowError)
    def out_of_range(request: HttpRequest, exc: OverflowError) -> HttpResponse:
        # A number past 64 bits (an id in a path, chiefly): SQLite cannot bind it, where
        # PostgreSQL compares it and finds nothing (404). Found by tests/test_schemathesis.py.
        return rounds_error(request, InvalidRequest(N_("The request does not match its schema.")))

    from accounts.api import router as accounts_router
    from accounts.factors.api import router as factors_router
    from accounts.keys_api import router as keys_router
    from advice.api import router as advice_router
    from chat.api import router as chat_router
    from chat.consults_api import router as consults_router
    from compliance.api import router as compliance_router
    from media.library_api import router as library_router
    from media.record_api import router as record_router
    from media.upload_api import router as upload_router
    from patients.api import router as patients_router
    from push.api import router as push_router
    from retention.api import router as retention_router
    from rooms.api import people_router
    from rooms.api import router as rooms_router
    from rooms.oncall_api import router as oncall_router

    api.add_router("/auth", accounts_router)
    api.add_router("/auth", factors_router)
    api.add_router("/keys", keys_router)
    api.add_router("/departments", rooms_router)
    api.add_router("/departments", oncall_router)
    api.add_router("/patients", patients_router)
    api.add_router("/people", people_router)
    api.add_router("/uploads", upload_router)
    api.add_router("/library", library_router)
    api.add_router("/library", record_router)
    api.add_router("/compliance", compliance_router)
    api.add_router("/retention", retention_router)
    api.add_router("/push", push_router)
    api.add_router("/advice", advice_router)
    api.add_router("/consults", consults_router)
    api.add_router("/", chat_router)
    return api
