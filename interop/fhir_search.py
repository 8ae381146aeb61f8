"""Patients and Encounters searched on the hospital's FHIR server (REST, R4), page by
page, and applied by interop/fhir_import.py. docs/interop-fhir.md.

Every Patient page comes before the first Encounter page, so an Encounter finds its
patient among the Patients of the run. A failure (no answer in time, an HTTP error,
an answer that is not a searchset Bundle) stops the run and is reported as a
refusal with its reason; what was applied before it stays applied (one transaction
per resource). A `next` link is followed only on the server searched: the bearer
token goes nowhere else.
"""

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from interop.fhir_import import Entry, FhirImport, ImportReport, entries_of

PAGE_SIZE = 50
MAX_PAGES = 100_000  # a server whose `next` never ends


class SearchFailed(Exception):
    """A search request that failed: which one, and why."""

    def __init__(self, request: str, reason: str) -> None:
        super().__init__(f"{request}: {reason}")
        self.request = request
        self.reason = reason


def import_from_server(
    base_url: str, *, since: str | None = None, token: str = "", timeout: float = 30.0
) -> ImportReport:
    """Search the server's Patients, then its Encounters (updated since `since`, an
    ISO date or date-time, when given), and apply each resource."""
    run = FhirImport()
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    base = base_url.rstrip("/")
    with httpx.Client(headers=headers, timeout=timeout, follow_redirects=False) as client:
        try:
            for entry in search(client, base, "Patient", since, run.report):
                run.do_entry(entry)
            run.finish_patients()
            for entry in search(client, base, "Encounter", since, run.report):
                run.do_entry(entry)
        except SearchFailed as failed:
            run.finish_patients()
            run.refuse(failed.request, failed.reason)
    return run.report


def search(
    client: httpx.Client, base: str, resource_type: str, since: str | None, report: ImportReport
) -> Iterator[Entry]:
    """The entries of every page of `GET base/resource_type?_count=50[&_lastUpdated=ge…]`."""
    params: dict[str, str] | None = {"_count": str(PAGE_SIZE)}
    if since:
        params = {**(params or {}), "_lastUpdated": f"ge{since}"}
    url: str | None = f"{base}/{resource_type}"
    seen: set[str] = set()
    while url is not None:
        if url in seen or len(seen) >= MAX_PAGES:
            raise SearchFailed(f"GET {url}", "the server's next link goes round in circles")
        seen.add(url)
        bundle = get_page(client, url, params, timeout=client.timeout.read)
        yield from entries_of(bundle, report)
        url, params = next_link(bundle, base, url), None


def get_page(
    client: httpx.Client, url: str, params: dict[str, str] | None, timeout: float | None
) -> dict[str, Any]:
    """One searchset page, or SearchFailed with a reason fit for the report."""
    request = f"GET {url}" + (f"?{httpx.QueryParams(params)}" if params else "")
    try:
        response = client.get(url, params=params)
    except httpx.TimeoutException:
        raise SearchFailed(request, f"no answer within {timeout} s (timeout)") from None
    except httpx.HTTPError as error:
        raise SearchFailed(request, f"cannot reach the server: {error}") from None
    if response.status_code != 200:
        raise SearchFailed(request, f"HTTP {response.status_code}{_diagnostics(response)}")
    try:
        bundle = response.json()
    except ValueError:
        raise SearchFailed(request, "the answer is not JSON") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise SearchFailed(request, "the answer is not a Bundle")
    if bundle.get("type") != "searchset":
        raise SearchFailed(request, f"the answer is a {bundle.get('type')!r} Bundle, not searchset")
    return bundle


def next_link(bundle: dict[str, Any], base: str, url: str) -> str | None:
    """The next page's URL; one on another server is refused (the token would follow)."""
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            target = str(link["url"])
            if _origin(target) != _origin(base):
                leaves = f"the next link leaves the server for {_site(target)}: not followed"
                raise SearchFailed(f"GET {url}", leaves)
            return target
    return None


def _site(url: str) -> str:
    scheme, netloc = _origin(url)
    return f"{scheme}://{netloc}"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _diagnostics(response: httpx.Response) -> str:
    """The OperationOutcome's first diagnostics, when the server sent one."""
    try:
        issues = response.json().get("issue") or []
        text = issues[0].get("diagnostics") or issues[0].get("code") or ""
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
    return f": {str(text)[:200]}" if text else ""
