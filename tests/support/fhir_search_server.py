"""A FHIR server answering searches, for the REST import tests: real HTTP on a real
socket (a ThreadingHTTPServer in a thread), R4 searchset Bundles in pages.

`GET /Patient?_count=…` and `GET /Encounter?…` answer the resources given for that
type, `page_size` at a time (fewer than `_count`, so a few resources make several
pages), each page's `next` link naming the following one as real servers do (an
opaque page token). It checks the bearer token, keeps every request it answered,
and can be told to fail: `fail_status` (an HTTP status with an OperationOutcome)
or `delay` (seconds before answering, past the client's timeout).
"""

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FHIR_JSON = "application/fhir+json"


@dataclass
class SearchServer:
    """What the server serves, how it fails, and what it was asked."""

    resources: dict[str, list[dict[str, Any]]]
    token: str = ""
    page_size: int = 2
    fail_status: int = 0
    fail_on: str = ""  # the resource type whose search fails ("" for every one)
    delay: float = 0.0
    next_link: str = ""  # a next link forced on the first page (another server's)
    base_url: str = ""
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path?query, Authorization)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self, resource_type: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """One searchset page; `_lastUpdated=ge…` keeps resources whose meta says so."""
        found = self.resources.get(resource_type, [])
        since = (query.get("_lastUpdated") or [""])[0].removeprefix("ge")
        if since:
            found = [r for r in found if (r.get("meta") or {}).get("lastUpdated", "") >= since]
        number = int((query.get("_page") or ["1"])[0])
        count = min(self.page_size, int((query.get("_count") or ["50"])[0]))
        chosen = found[(number - 1) * count : number * count]
        links = [{"relation": "self", "url": f"{self.base_url}/{resource_type}?_page={number}"}]
        if number * count < len(found):
            following = f"_count={count}&_page={number + 1}"
            if since:
                following += f"&_lastUpdated=ge{since}"
            links.append(
                {"relation": "next", "url": f"{self.base_url}/{resource_type}?{following}"}
            )
        if self.next_link and number == 1:
            links = [{"relation": "next", "url": self.next_link}]
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{self.base_url}/{resource_type}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in chosen
            ],
        }


def outcome(diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": diagnostics}],
    }


def _handler(server: SearchServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
            return

        def do_GET(self) -> None:
            with server.lock:
                server.requests.append((self.path, self.headers.get("Authorization", "")))
            if server.delay:
                time.sleep(server.delay)
            parts = urlsplit(self.path)
            resource_type = parts.path.strip("/")
            if server.token and self.headers.get("Authorization") != f"Bearer {server.token}":
                self._send(401, outcome("missing or wrong bearer token"))
            elif resource_type not in ("Patient", "Encounter"):
                self._send(404, outcome(f"unknown resource type {resource_type!r}"))
            elif server.fail_status and server.fail_on in ("", resource_type):
                self._send(server.fail_status, outcome("the database is down"))
            else:
                self._send(200, server.page(resource_type, parse_qs(parts.query)))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", FHIR_JSON)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            # The client may have given up (its timeout) before the answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

    return Handler


@contextmanager
def serving(server: SearchServer) -> Iterator[SearchServer]:
    """The server listening on a free port of 127.0.0.1 for the `with` block."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    host, port = httpd.server_address[:2]
    server.base_url = f"http://{host}:{port}"
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), name="fhir-search", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
