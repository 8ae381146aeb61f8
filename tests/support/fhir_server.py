"""A strict FHIR server for the tests: real HTTP on a real socket, R4 (R4B models).

HAPI FHIR, the reference server, needs Java, which this machine cannot install;
this stands in for the hospital's FHIR server (docs/interop-photos.md). It takes
what Rounds' clients send, a `transaction` Bundle of one or more Binary +
DocumentReference pairs, parses it with `fhir.resources.R4B` (fhir.resources
8 ships R5 and R4B, not R4; the resources used here are the same in R4 and R4B),
and refuses with `400` and an OperationOutcome anything a real server would, or
that the hospital's rules forbid:

- not JSON, not a Bundle, not a `transaction`, a model error (any field the R4B
  models refuse), an entry that is not a POST of a Binary or a DocumentReference,
  a fullUrl that is not a `urn:uuid:`;
- a Binary whose `data` is not strict base64, or whose bytes are not what its
  `contentType` says (JPEG or PNG only), or that no DocumentReference points to;
- a DocumentReference without a subject identified by the configured IPP system
  and a value, without `content[0].attachment` pointing to a Binary of the
  Bundle with the same content type and a creation time, without a type, a date
  or an author.

Accepted resources are stored (the Binary's bytes decoded) under new ids; the
answer is a `transaction-response` Bundle whose entries give `Binary/<id>` and
`DocumentReference/<id>` locations, in the order of the request's entries. CORS
is answered for the origins in `allowed_origins` (a browser posts here directly).
"""

import base64
import binascii
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

FHIR_JSON = "application/fhir+json"
MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_BODY = 64 * 1024 * 1024


class Refused(Exception):
    """A request the server refuses: its OperationOutcome's diagnostics."""


@dataclass
class StoredBinary:
    id: str
    content_type: str
    data: bytes


@dataclass
class FhirStore:
    """What the server accepted and refused, for the tests' assertions."""

    ipp_system: str
    binaries: dict[str, StoredBinary] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → resource JSON
    refusals: list[str] = field(default_factory=list)  # diagnostics, in order
    origins_seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count = field(default_factory=lambda: itertools.count(101))


def outcome(diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": diagnostics}],
    }


def check_transaction(raw: dict[str, Any], ipp_system: str) -> list[dict[str, Any]]:
    """The entries of a valid transaction, or Refused with what is wrong."""
    if raw.get("resourceType") != "Bundle":
        raise Refused(f"Expected a Bundle, got resourceType {raw.get('resourceType')!r}")
    if raw.get("type") != "transaction":
        raise Refused(f"Bundle.type must be transaction, not {raw.get('type')!r}")
    entries = raw.get("entry") or []
    if not isinstance(entries, list) or not entries:
        raise Refused("The Bundle has no entry")
    binaries: dict[str, dict[str, Any]] = {}
    documents = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            raise Refused(f"entry {index} has no resource")
        resource = entry["resource"]
        kind = resource.get("resourceType")
        request = entry.get("request") or {}
        if kind not in ("Binary", "DocumentReference"):
            raise Refused(f"entry {index}: {kind!r} is not accepted here")
        if request.get("method") != "POST" or request.get("url") != kind:
            raise Refused(f"entry {index}: request must be POST {kind}")
        full_url = entry.get("fullUrl") or ""
        if not UUID_URN.match(full_url):
            raise Refused(f"entry {index}: fullUrl must be a urn:uuid:, not {full_url!r}")
        if kind == "Binary":
            binaries[full_url] = {"resource": resource, "data": _binary_bytes(index, resource)}
        else:
            documents.append((index, resource))
    # The hospital's rules first (their words are the clearest), then every field R4B has.
    try:
        Bundle.model_validate(raw)
    except ValidationError as error:
        raise Refused(f"Invalid Bundle: {error}") from None
    referenced = set()
    for index, document in documents:
        referenced.add(_check_document(index, document, binaries, ipp_system))
    unreferenced = set(binaries) - referenced
    if unreferenced:
        raise Refused(f"Binary not referenced by any DocumentReference: {sorted(unreferenced)}")
    return entries


def _binary_bytes(index: int, binary: dict[str, Any]) -> bytes:
    content_type = binary.get("contentType")
    if content_type not in MAGIC:
        raise Refused(f"entry {index}: Binary.contentType {content_type!r} is not an image")
    raw = binary.get("data")
    if not isinstance(raw, str):
        raise Refused(f"entry {index}: Binary.data is not base64")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(f"entry {index}: Binary.data is not base64") from None
    if not data:
        raise Refused(f"entry {index}: Binary.data is empty")
    if not data.startswith(MAGIC[content_type]):
        raise Refused(f"entry {index}: Binary.data is not {content_type} (contentType mismatch)")
    return data


def _check_document(
    index: int, document: dict[str, Any], binaries: dict[str, dict[str, Any]], ipp_system: str
) -> str:
    """The urn of the Binary the DocumentReference points to, once it is found valid."""
    where = f"entry {index}: DocumentReference"
    identifier = (document.get("subject") or {}).get("identifier") or {}
    if identifier.get("system") != ipp_system or not identifier.get("value"):
        raise Refused(f"{where}.subject must identify the patient by IPP ({ipp_system})")
    if document.get("status") != "current":
        raise Refused(f"{where}.status must be current")
    for name in ("type", "date", "author"):
        if not document.get(name):
            raise Refused(f"{where}.{name} is missing")
    content = document.get("content") or []
    attachment = (content[0] if content else {}).get("attachment")
    if not attachment:
        raise Refused(f"{where}.content[0].attachment is missing")
    target = binaries.get(attachment.get("url") or "")
    if target is None:
        raise Refused(f"{where}.content[0].attachment.url is not a Binary of this Bundle")
    if attachment.get("contentType") != target["resource"]["contentType"]:
        raise Refused(f"{where}.content[0].attachment.contentType differs from its Binary's")
    if not attachment.get("creation"):
        raise Refused(f"{where}.content[0].attachment.creation is missing")
    return str(attachment["url"])


def store_transaction(store: FhirStore, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Give every resource an id, point each DocumentReference at its stored Binary, and
    answer the transaction-response Bundle."""
    with store.lock:
        ids = {entry["fullUrl"]: str(next(store.ids)) for entry in entries}
        answers = []
        for entry in entries:
            resource = json.loads(json.dumps(entry["resource"]))
            kind, new_id = resource["resourceType"], ids[entry["fullUrl"]]
            resource["id"] = new_id
            if kind == "Binary":
                data = base64.b64decode(resource["data"])
                store.binaries[new_id] = StoredBinary(new_id, resource["contentType"], data)
            else:
                attachment = resource["content"][0]["attachment"]
                attachment["url"] = f"Binary/{ids[attachment['url']]}"
                store.documents[new_id] = resource
            answers.append(
                {
                    "response": {
                        "status": "201 Created",
                        "location": f"{kind}/{new_id}/_history/1",
                        "etag": 'W/"1"',
                    }
                }
            )
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}


class FhirServer:
    """The server on 127.0.0.1, its base URL `url` (…/fhir); a context manager."""

    def __init__(self, ipp_system: str, allowed_origins: tuple[str, ...] = ()) -> None:
        self.store = FhirStore(ipp_system=ipp_system)
        self.allowed_origins = set(allowed_origins)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "FhirServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _handler(server: FhirServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the tests assert on the store

        def _cors(self) -> None:
            origin = self.headers.get("Origin")
            if origin:
                server.store.origins_seen.append(origin)
            if origin and origin in server.allowed_origins:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Vary", "Origin")

        def _answer(self, status: int, body: dict[str, Any] | None) -> None:
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self._cors()
            if body is not None:
                self.send_header("Content-Type", f"{FHIR_JSON}; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Content-Type, Accept, Prefer")
            self.send_header("Access-Control-Max-Age", "60")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            match = re.fullmatch(r"/fhir/(DocumentReference|Binary)/([0-9]+)", self.path)
            found: dict[str, Any] | None = None
            if match and match[1] == "DocumentReference":
                found = server.store.documents.get(match[2])
            elif match:
                binary = server.store.binaries.get(match[2])
                if binary is not None:
                    found = {
                        "resourceType": "Binary",
                        "id": binary.id,
                        "contentType": binary.content_type,
                        "data": base64.b64encode(binary.data).decode(),
                    }
            if found is None:
                self._answer(404, outcome(f"{self.path} not found"))
            else:
                self._answer(200, found)

        def do_POST(self) -> None:
            try:
                if self.path.rstrip("/") != "/fhir":
                    raise Refused(f"POST a transaction to the base URL, not {self.path}")
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                if content_type not in (FHIR_JSON, "application/json"):
                    raise Refused(f"Content-Type must be {FHIR_JSON}, not {content_type!r}")
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY:
                    raise Refused("A body of 1 byte to 64 MiB is expected")
                try:
                    raw = json.loads(self.rfile.read(length))
                except ValueError:
                    raise Refused("The body is not JSON") from None
                if not isinstance(raw, dict):
                    raise Refused("The body is not a resource")
                entries = check_transaction(raw, server.store.ipp_system)
            except Refused as refusal:
                server.store.refusals.append(str(refusal))
                self._answer(400, outcome(str(refusal)))
                return
            self._answer(200, store_transaction(server.store, entries))

    return Handler
