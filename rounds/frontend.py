"""Serves the browser client (frontend/): `/` and its static files under `/app/`.

Plain ES modules, no build step. Every answer carries a strict
Content-Security-Policy: scripts only from this origin (no inline script, so
an injected message cannot run), plus 'wasm-unsafe-eval' because libsodium
is WebAssembly. `/app/institution.json`, the pinned institution key
fingerprints, is a deployment file IT places beside the code
(docs/browser.md), never something the API or the database can change.
"""

import os
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

FRONTEND_DIR = Path(settings.BASE_DIR) / "frontend"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
}
# Served files; anything else under frontend/ (README, update.sh) is not.
SERVED_SUFFIXES = frozenset(CONTENT_TYPES) - {".html"}
_Response = TypeVar("_Response", bound=HttpResponseBase)


def institution_file() -> Path:
    """Where IT puts the pinned fingerprints: ROUNDS_INSTITUTION_FILE, or var/institution.json."""
    configured = os.environ.get("ROUNDS_INSTITUTION_FILE")
    return Path(configured) if configured else Path(settings.VAR_DIR) / "institution.json"


def fhir_origin() -> str:
    """The hospital's FHIR server's origin, which devices send photos to (or "")."""
    base = urlsplit(settings.ROUNDS_FHIR_BASE_URL)
    return f"{base.scheme}://{base.netloc}" if base.scheme and base.netloc else ""


def content_security_policy(request: HttpRequest) -> str:
    host = request.get_host()
    sockets = f"wss://{host}" if request.is_secure() else f"ws://{host} wss://{host}"
    # A photo sent to the patient record goes from the page to the FHIR server.
    fhir = f" {fhir_origin()}" if fhir_origin() else ""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            "media-src 'self' blob:",
            f"connect-src 'self' {sockets}{fhir}",
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _secure(response: _Response, request: HttpRequest) -> _Response:
    response["Content-Security-Policy"] = content_security_policy(request)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Content-Type-Options"] = "nosniff"
    response["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    # Revalidate each time: a stale client speaking an old protocol is worse than a request.
    response["Cache-Control"] = "no-cache"
    return response


@require_safe
@ensure_csrf_cookie
def index(request: HttpRequest) -> FileResponse:
    """The single page; the client routes with the URL fragment."""
    response = FileResponse(
        (FRONTEND_DIR / "index.html").open("rb"), content_type=CONTENT_TYPES[".html"]
    )
    return _secure(response, request)


@require_safe
def asset(request: HttpRequest, path: str) -> FileResponse:
    """A file under frontend/, and nothing outside it."""
    if path == "institution.json":
        target = institution_file()
    else:
        target = (FRONTEND_DIR / path).resolve()
        if FRONTEND_DIR.resolve() not in target.parents or target.suffix not in SERVED_SUFFIXES:
            raise Http404("Not found.")
    if not target.is_file():
        raise Http404("Not found.")
    response = FileResponse(target.open("rb"), content_type=CONTENT_TYPES[target.suffix])
    return _secure(response, request)


@require_safe
def service_worker(request: HttpRequest) -> FileResponse:
    """frontend/sw.js at /sw.js: a worker's scope is at most its own path's folder, and
    push notifications must open any screen of the app (docs/push.md)."""
    response = FileResponse((FRONTEND_DIR / "sw.js").open("rb"), content_type=CONTENT_TYPES[".js"])
    return _secure(response, request)
