"""Send decrypted photos to the hospital's FHIR server, from this device (`rounds record`).

The photo leaves the device only for the FHIR server, never for Rounds' server,
which never sees a plaintext photo (docs/interop-photos.md). For each photo:
ask Rounds for its metadata (`GET /api/library/photos/{id}/record`: the patient's
IPP, the stay, the capture time, the keywords, who took it), decrypt it as
`rounds fetch` does, post one FHIR R4 `transaction` Bundle (a Binary and the
DocumentReference that points to it) to the FHIR server, then tell Rounds the
ids it gave (`POST …/record`), which keeps them on the photo and audits them.

The Bundle is built exactly as the browser's (frontend/js/photos/fhir.js) builds
it; tests/client/test_fhir_export.py and tests/browser/test_record_export.py post
both to the same strict server.
"""

import argparse
import base64
import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from client.errors import RoundsClientError

if TYPE_CHECKING:
    from client.sdk import RoundsClient

FHIR_JSON = "application/fhir+json"
# LOINC 72170-4 "Photographic image": the document type of a clinical photograph.
PHOTO_TYPE = {"system": "http://loinc.org", "code": "72170-4", "display": "Photographic image"}
# The keywords of Rounds' nomenclature, as the DocumentReference's categories.
KEYWORD_SYSTEM = "urn:rounds:keyword"
ATTACHMENT_SYSTEM = "urn:rounds:attachment"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
FHIR_TIMEOUT = 60.0


def _person(person: dict[str, Any], user_system: str) -> dict[str, Any]:
    return {
        "type": "Practitioner",
        "identifier": {"system": user_system, "value": person["username"]},
        "display": person["display_name"],
    }


def security_labels(consent: str) -> list[dict[str, Any]]:
    """Every clinical photo is restricted (it shows the patient); one consented for care only
    also says so, as the purpose of use it may serve (treatment)."""
    labels = [{"coding": [{"system": CONFIDENTIALITY, "code": "R", "display": "restricted"}]}]
    if consent == "care":
        labels.append({"coding": [{"system": ACT_REASON, "code": "TREAT", "display": "treatment"}]})
    return labels


def build_bundle(
    record: dict[str, Any],
    photo: bytes,
    media_type: str,
    *,
    now: datetime | None = None,
    binary_urn: str | None = None,
    document_urn: str | None = None,
) -> dict[str, Any]:
    """The transaction Bundle of one photo: a Binary and a DocumentReference pointing to it.

    Args:
        record: the answer of `GET /api/library/photos/{id}/record`.
        photo: the decrypted photo, exactly the bytes the sender encrypted.
        media_type: the photo's, from the signed body (image/jpeg, image/png).
        now: the document's date (now, by default).
    """
    binary_urn = binary_urn or f"urn:uuid:{uuid.uuid4()}"
    document_urn = document_urn or f"urn:uuid:{uuid.uuid4()}"
    patient = record["patient"]
    labels = [keyword["label"] for keyword in record["keywords"]]
    document: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "identifier": [{"system": ATTACHMENT_SYSTEM, "value": str(record["attachment"])}],
        "status": "current",
        "type": {"coding": [PHOTO_TYPE], "text": "Clinical photograph"},
        "category": [
            {
                "coding": [
                    {"system": KEYWORD_SYSTEM, "code": keyword["code"], "display": keyword["label"]}
                ],
                "text": keyword["label"],
            }
            for keyword in record["keywords"]
        ],
        "subject": {
            "type": "Patient",
            "identifier": {"system": record["ipp_system"], "value": patient["ipp"]},
            "display": f"{patient['family_name'].upper()} {patient['given_name']}",
        },
        "date": (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
        "author": [_person(record["author"], record["user_system"])],
        "authenticator": _person(record["authenticator"], record["user_system"]),
        "description": "Clinical photograph" + (f": {', '.join(labels)}" if labels else ""),
        "securityLabel": security_labels(record["consent"]),
        "content": [
            {
                "attachment": {
                    "contentType": media_type,
                    "url": binary_urn,
                    "size": len(photo),
                    # FHIR's Attachment.hash is SHA-1 by definition: integrity, not a seal.
                    "hash": base64.b64encode(
                        hashlib.sha1(photo, usedforsecurity=False).digest()
                    ).decode(),
                    "creation": record["captured_at"],
                }
            }
        ],
    }
    if record["encounter"]:
        document["context"] = {
            "encounter": [{"type": "Encounter", "identifier": {"value": record["encounter"]}}]
        }
    binary = {
        "resourceType": "Binary",
        "contentType": media_type,
        "data": base64.b64encode(photo).decode(),
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": binary_urn,
                "resource": binary,
                "request": {"method": "POST", "url": "Binary"},
            },
            {
                "fullUrl": document_urn,
                "resource": document,
                "request": {"method": "POST", "url": "DocumentReference"},
            },
        ],
    }


def outcome_text(body: Any) -> str:
    """An OperationOutcome's issues in words (diagnostics, else details, else the code)."""
    issues = body.get("issue") if isinstance(body, dict) else None
    words = []
    for issue in issues or []:
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        words.append(str(text or issue.get("code") or "error"))
    return "; ".join(words)


def created_ids(answer: Any) -> tuple[str, str]:
    """(DocumentReference id, Binary id) from a transaction-response's locations.

    Raises RoundsClientError `fhir_answer`: an answer without both locations.
    """
    found: dict[str, str] = {}
    entries = answer.get("entry") if isinstance(answer, dict) else None
    for entry in entries or []:
        location = str((entry.get("response") or {}).get("location") or "")
        kind, _, rest = location.partition("/")
        if kind in ("Binary", "DocumentReference") and rest:
            found[kind] = rest.split("/")[0]
    if set(found) != {"Binary", "DocumentReference"}:
        raise RoundsClientError(
            "fhir_answer", "The FHIR server's answer names no DocumentReference and Binary."
        )
    return found["DocumentReference"], found["Binary"]


async def post_bundle(base_url: str, bundle: dict[str, Any]) -> tuple[str, str]:
    """POST the transaction to the FHIR server; the ids it created.

    Raises RoundsClientError `fhir_refused` with the OperationOutcome in words.
    """
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Prefer": "return=minimal"}
    async with httpx.AsyncClient(timeout=FHIR_TIMEOUT) as http:
        response = await http.post(base_url, json=bundle, headers=headers)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code >= 400:
        words = outcome_text(answer) or f"HTTP {response.status_code}"
        raise RoundsClientError("fhir_refused", f"The FHIR server refused the photo: {words}")
    return created_ids(answer)


async def _decrypted(client: "RoundsClient", attachment_id: int, ipp: str) -> tuple[bytes, str]:
    """The photo's plaintext and media type, found in the library as `rounds fetch` finds it."""
    async for item in client.library_items(ipp=ipp):
        if item["id"] != attachment_id:
            continue
        body = await client.open_photo_message(item["message"], department=item["department"])
        (entry,) = [p for p in body["photos"] if p["upload"] == str(item["upload"])]
        data = await client.download_photo(entry)
        return data, str(entry.get("media_type") or "image/jpeg")
    raise RoundsClientError("not_found", "No such photo in your departments.")


async def send_photos_to_record(
    client: "RoundsClient", attachment_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """Send each photo to the patient record, one transaction each; the exports Rounds recorded.

    A photo is recorded only once the FHIR server has accepted it; the first
    refusal stops (the photos before it stay sent and recorded).
    """
    recorded = []
    for attachment_id in attachment_ids:
        path = f"/api/library/photos/{attachment_id}/record"
        record = await client.call("GET", path)
        base_url = record.get("fhir_base_url")
        if not base_url:
            raise RoundsClientError(
                "fhir_off", "Sending photos to the patient record is not set up on this server."
            )
        data, media_type = await _decrypted(client, attachment_id, record["patient"]["ipp"])
        document_reference, binary = await post_bundle(
            base_url, build_bundle(record, data, media_type)
        )
        body = {"server": base_url, "document_reference": document_reference, "binary": binary}
        recorded.append(await client.call("POST", path, json=body))
    return recorded


async def run_record(client: "RoundsClient", args: argparse.Namespace) -> None:
    """`rounds record --attachment ID…`: one line per photo sent."""
    for export in await send_photos_to_record(client, args.attachment):
        print(
            f"attachment {export['attachment']}: sent to the patient record "
            f"(DocumentReference/{export['document_reference']}, Binary/{export['binary']})"
        )
