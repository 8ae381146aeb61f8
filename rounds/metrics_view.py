"""GET /metrics: this process's Prometheus metrics (rounds/metrics.py), for its scraper only.

Allowed from loopback, unless the request came through a proxy (it carries
a forwarding header: the proxy's own address says nothing about the
client), or with `Authorization: Bearer $ROUNDS_METRICS_TOKEN`. Anyone
else gets the same 404 as any unknown path, not a hint that it exists.
"""

import hmac
import ipaddress

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from rounds.metrics import AUDIT_BACKLOG

FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def from_loopback(request: HttpRequest) -> bool:
    if any(header in request.META for header in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def has_token(request: HttpRequest) -> bool:
    expected = settings.ROUNDS_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


async def metrics(request: HttpRequest) -> HttpResponse:
    if request.method != "GET" or not (from_loopback(request) or has_token(request)):
        raise Http404
    await AUDIT_BACKLOG.refresh()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
