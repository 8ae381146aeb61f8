"""A patient's photo report made by a compliance officer under a case, with the compliance key.

The same PDF as a member's (client/report.py), from the photos the case
covers: each photo's message is opened offline with the compliance key
(its thread's timeline released under the case, checked by
client/compliance.py), its blob downloaded under the case and decrypted.
A photo whose message fails a check stops the report: a document handed on
holds verified photos only (`rounds compliance read` shows the failure).
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from client.cases import timeline_pages
from client.compliance import department_of, open_thread
from client.errors import RoundsClientError
from client.i18n import SOURCE_LANGUAGE
from client.report import Collected, _id, build_report, library_listing, report_photo
from core.crypto import ChainHead, IdentityKeyPair

if TYPE_CHECKING:
    from client.sdk import RoundsClient


async def collect_case_photos(
    client: "RoundsClient", case: int, ipp: str, key: IdentityKeyPair, pinned_admin: str
) -> Collected:
    """Every photo of the patient the case covers, decrypted and checked.

    Raises RoundsClientError: `not_found` (no such photo under the case), a
    message's failed check (its code), or what the server and the chain refuse.
    """
    items, zone = await library_listing(client, ipp=ipp, case=case)
    if not items:
        raise RoundsClientError("not_found", f"No photo of patient IPP {ipp} under case {case}.")
    labels = {k["code"]: k["label"] for k in await client.photo_keywords()}
    bodies: dict[Any, dict[str, Any]] = {}
    checks: dict[Any, dict[str, Any]] = {}
    opened: set[Any] = set()
    photos = []
    for item in items:
        thread, message = _id(item["thread"]), item["message"]["id"]
        if thread not in opened:
            pages = await timeline_pages(client, case, thread)
            department = department_of(pages)
            review, found = open_thread(pages, key, pinned_admin, client.trust.head(department))
            client.trust.keep_head(department, ChainHead(**review["chain"]["head"]))
            bodies.update(found)
            checks.update({m["id"]: m["check"] for m in review["messages"]})
            opened.add(thread)
        body = bodies.get(message)
        if body is None:
            check = checks.get(message) or {"code": "not_found", "detail": "not released"}
            raise RoundsClientError(
                check["code"], f"photo {item['id']} (message {message}): {check['detail']}"
            )
        (entry,) = [p for p in body["photos"] if p["upload"] == str(item["upload"])]
        image = await client.download_photo(entry, case=case)
        photos.append(report_photo(item, body, entry, image, labels))
    return Collected(items[0]["patient"], photos, zone)


async def write_case_report(
    client: "RoundsClient",
    case: int,
    ipp: str,
    out: str | Path,
    key: IdentityKeyPair,
    pinned_admin: str,
    language: str = SOURCE_LANGUAGE,
) -> dict[str, Any]:
    """Build the report into `out`, in `language`, then let the server audit it under the
    case."""
    found = await collect_case_photos(client, case, ipp, key, pinned_admin)
    path = Path(out)
    pdf = build_report(found.patient, found.photos, zone=found.zone, language=language)
    path.write_bytes(pdf)  # noqa: ASYNC240 (a few megabytes, once)
    await client.call(
        "POST",
        "/api/library/reports",
        json={"patient": found.patient["id"], "photos": len(found.photos), "case": case},
    )
    return {"patient": found.patient, "photos": len(found.photos), "path": str(path)}
