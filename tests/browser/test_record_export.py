"""A photo sent to the patient record from the browser, straight to the FHIR server
(docs/interop-photos.md), on a phone-sized Chromium against real daphne.

Surgeon Bob posts a phone photo in Léa's conversation, opens it, and taps "Send to the
patient record". The browser posts the transaction Bundle to the strict FHIR server
of tests/support/fhir_server.py (another origin: CORS, and the FHIR origin in the
page's connect-src), which stores a DocumentReference naming Léa's IPP, her stay,
the capture time and Bob, and a Binary whose bytes are exactly what the Python
client decrypts; the DocumentReference is the one client/fhir_export.py builds from
the same metadata. Rounds keeps the ids. A refusal of the FHIR server is said in
words and records nothing.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from client.fhir_export import build_bundle
from tests.browser.support import (
    close_ward,
    demo_cluster,
    device_dir,
    open_thread,
    phone_photo,
    plastic_surgery_ward,
    python_client,
    run_async,
    shot,
)
from tests.live.servers import DEMO_PASSWORD, LiveCluster
from tests.support.fhir_server import FhirServer

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

IPP_SYSTEM = "urn:oid:1.2.250.1.999.1"
PARIS = timezone(timedelta(hours=1))
TAKEN = (datetime.now(PARIS) - timedelta(hours=2)).replace(second=0, microsecond=0)


@pytest.fixture(scope="module")
def fhir_cluster() -> Iterator[tuple[LiveCluster, FhirServer]]:
    with FhirServer(IPP_SYSTEM) as fhir:
        settings = {
            "ROUNDS_FHIR_BASE_URL": fhir.url,
            "ROUNDS_FHIR_IPP_SYSTEM": IPP_SYSTEM,
        }
        with demo_cluster(settings) as cluster:
            fhir.allowed_origins.add(cluster.servers[0].url)
            yield cluster, fhir


def add_stay(cluster: LiveCluster, thread_id: int, visit_number: str) -> str:
    """A stay of the thread's patient that began before the photo was taken; their IPP."""
    out = cluster.manage(
        "shell",
        "-c",
        "from datetime import timedelta; from django.utils import timezone; "
        "from chat.models import Thread; from patients.models import Admission; "
        f"t = Thread.objects.select_related('patient').get(pk={thread_id}); "
        "Admission.objects.create(patient=t.patient, ward='Plastic surgery', "
        f"admitted_at=timezone.now() - timedelta(days=1), visit_number={visit_number!r}); "
        "print(t.patient.ipp)",
    )
    return out.strip().splitlines()[-1]


def post_photo(page: Page, photo: bytes) -> None:
    page.get_by_role("button", name="Add photos").click()
    sheet = page.get_by_role("dialog", name="Add photos")
    page.get_by_label("Choose photos").set_input_files(
        {"name": "IMG_3001.jpg", "mimeType": "image/jpeg", "buffer": photo}
    )
    expect(sheet.locator(".preview")).to_have_count(1)
    sheet.get_by_label("Hand", exact=True).check()
    sheet.get_by_label("Care only").check()
    sheet.get_by_role("button", name="Send photo").click()
    expect(sheet).to_have_count(0, timeout=30_000)


async def decrypted_by_python(cluster: LiveCluster, secret: str) -> tuple[int, bytes, dict]:
    """Bob's photo as the Python client decrypts it (as `rounds fetch` writes it), its
    attachment id, and the record metadata Rounds gives."""
    async with python_client(cluster, device_dir()) as bob:
        await bob.login("surgeon_bob", DEMO_PASSWORD)
        assert await bob.setup_keys(secret) is None
        (item,) = [i async for i in bob.library_items()]
        body = await bob.open_photo_message(item["message"], department=item["department"])
        (entry,) = [p for p in body["photos"] if p["upload"] == item["upload"]]
        data = await bob.download_photo(entry)
        record = await bob.call("GET", f"/api/library/photos/{item['id']}/record")
    return item["id"], data, record


def test_a_photo_goes_from_the_viewer_to_the_fhir_server_and_rounds_keeps_the_ids(
    browser: Browser, fhir_cluster: tuple[LiveCluster, FhirServer]
):
    cluster, fhir = fhir_cluster
    ward = plastic_surgery_ward(browser, cluster, ("surgeon_bob",))
    try:
        bob = ward.people["surgeon_bob"]
        page = bob.page
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        csp = "Content Security Policy"
        page.on("console", lambda m: errors.append(m.text) if csp in m.text else None)
        thread_id = open_thread(page, "Hand wound, to the record")
        ipp = add_stay(cluster, thread_id, "V-BROWSER-7")
        post_photo(page, phone_photo(TAKEN))

        page.locator("li.msg .photo.ready").first.click()
        viewer = page.get_by_role("dialog", name="Photo")
        send = viewer.get_by_role("button", name="Send to the patient record")
        expect(send).to_be_visible(timeout=20_000)
        send.click()
        status = viewer.locator("#record-status")
        # A download, a decryption and two posts: more than expect's 5 s on a busy machine.
        expect(status).to_contain_text(
            "Sent to the patient record (DocumentReference/", timeout=30_000
        )

        ((document_id, stored),) = fhir.store.documents.items()
        (binary,) = fhir.store.binaries.values()
        expect(status).to_have_text(f"Sent to the patient record (DocumentReference/{document_id})")
        shot(status.page, "record-export-sent-phone")
        assert fhir.store.origins_seen[-1] == cluster.servers[0].url  # the browser, via CORS
        assert stored["subject"]["identifier"] == {"system": IPP_SYSTEM, "value": ipp}
        assert stored["context"]["encounter"][0]["identifier"]["value"] == "V-BROWSER-7"
        assert stored["author"][0]["identifier"]["value"] == "surgeon_bob"
        creation = datetime.fromisoformat(stored["content"][0]["attachment"]["creation"])
        assert creation == TAKEN  # the phone's DateTimeOriginal, kept through the post
        attachment_id, data, record = run_async(decrypted_by_python(cluster, str(bob.secret)))
        assert binary.data == data
        assert binary.content_type == "image/jpeg"

        # The browser's DocumentReference is the Python client's, from the same metadata.
        ours = build_bundle(record, data, "image/jpeg", now=datetime.fromisoformat(stored["date"]))[
            "entry"
        ][1]["resource"]
        ours["id"] = document_id
        ours["content"][0]["attachment"]["url"] = f"Binary/{binary.id}"
        assert stored == ours

        (export,) = record["exports"]
        assert export["attachment"] == attachment_id
        assert (export["document_reference"], export["binary"]) == (document_id, binary.id)

        # A refusal, in words; Rounds records nothing more.
        fhir.store.ipp_system = "urn:oid:9.9.9"
        viewer.get_by_role("button", name="Close").click()
        page.locator("li.msg .photo.ready").first.click()
        viewer = page.get_by_role("dialog", name="Photo")
        expect(viewer.locator("#record-status")).to_have_text(
            f"Sent to the patient record (DocumentReference/{document_id})", timeout=20_000
        )
        viewer.get_by_role("button", name="Send to the patient record").click()
        expect(viewer.locator("#record-status")).to_contain_text(
            "The patient record refused the photo: entry 1: DocumentReference.subject must "
            "identify the patient by IPP",
            timeout=30_000,
        )
        expect(viewer.get_by_role("button", name="Send to the patient record")).to_be_enabled()
        assert len(fhir.store.documents) == 1
        again: dict[str, Any] = run_async(decrypted_by_python(cluster, str(bob.secret)))[2]
        assert len(again["exports"]) == 1
        assert errors == []
    finally:
        close_ward(ward)
