"""Photos sent to the patient record from the Python client (client/fhir_export.py).

First the Bundle against the strict FHIR server of tests/support/fhir_server.py
over a real socket: what the client builds is accepted and stored as sent, and
each thing a FHIR server refuses comes back as `fhir_refused` with the
OperationOutcome in words. Then `rounds record` against live daphne: Carol
sends Bob's photo; the FHIR server holds a DocumentReference naming Léa's IPP,
her stay, the capture time and both clinicians, and a Binary whose bytes are
exactly what `rounds fetch` decrypts; Rounds keeps the ids and audits them.
"""

import asyncio
import base64
import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from client.errors import RoundsClientError
from client.fhir_export import PHOTO_TYPE, build_bundle, post_bundle
from tests.live.cli import run_rounds
from tests.live.photo_team import make_team, phone_photo, signed_in
from tests.live.servers import LiveCluster, live_cluster
from tests.support.fhir_server import FhirServer

IPP_SYSTEM = "urn:oid:1.2.250.1.999.1"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
RECORD: dict[str, Any] = {
    "attachment": 31,
    "fhir_base_url": None,  # set per test: the server's
    "ipp_system": IPP_SYSTEM,
    "user_system": "urn:rounds:username",
    "patient": {
        "ipp": "00800100",
        "family_name": "Lefèvre",
        "given_name": "Léa",
        "birth_date": "1985-01-30",
    },
    "encounter": "V2026-0042",
    "captured_at": "2026-11-23T07:15:00+00:00",
    "consent": "care",
    "keywords": [{"code": "hand", "label": "Hand"}],
    "author": {"username": "surgeon_bob", "display_name": "Bob Martin"},
    "authenticator": {"username": "nurse_alice", "display_name": "Alice Durand"},
    "exports": [],
}


@pytest.fixture
def fhir() -> Iterator[FhirServer]:
    with FhirServer(IPP_SYSTEM) as server:
        yield server


def document_of(bundle: dict[str, Any]) -> dict[str, Any]:
    return bundle["entry"][1]["resource"]


def test_the_bundle_is_accepted_and_stored_as_built(fhir: FhirServer):
    now = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    bundle = build_bundle(RECORD, JPEG, "image/jpeg", now=now)

    document_id, binary_id = asyncio.run(post_bundle(fhir.url, bundle))

    stored = fhir.store.documents[document_id]
    assert stored["subject"]["identifier"] == {"system": IPP_SYSTEM, "value": "00800100"}
    assert stored["subject"]["display"] == "LEFÈVRE Léa"
    assert stored["context"]["encounter"][0]["identifier"]["value"] == "V2026-0042"
    assert stored["date"] == "2026-12-06T10:00:00+00:00"
    assert stored["type"]["coding"] == [PHOTO_TYPE]
    assert stored["category"][0]["coding"][0]["code"] == "hand"
    assert stored["description"] == "Clinical photograph: Hand"
    assert stored["author"][0]["identifier"]["value"] == "surgeon_bob"
    assert stored["authenticator"]["identifier"]["value"] == "nurse_alice"
    attachment = stored["content"][0]["attachment"]
    assert attachment["url"] == f"Binary/{binary_id}"
    assert attachment["creation"] == "2026-11-23T07:15:00+00:00"
    assert attachment["size"] == len(JPEG)
    assert [label["coding"][0]["code"] for label in stored["securityLabel"]] == ["R", "TREAT"]
    assert fhir.store.binaries[binary_id].data == JPEG
    assert fhir.store.refusals == []


def test_without_a_stay_the_document_names_no_encounter(fhir: FhirServer):
    bundle = build_bundle({**RECORD, "encounter": None, "consent": "teaching"}, JPEG, "image/jpeg")

    document_id, _ = asyncio.run(post_bundle(fhir.url, bundle))

    assert "context" not in fhir.store.documents[document_id]
    assert len(fhir.store.documents[document_id]["securityLabel"]) == 1


def _wrong_resource_type(b: dict) -> None:
    b["entry"][0]["resource"]["resourceType"] = "Media"
    b["entry"][0]["request"]["url"] = "Media"


def _no_subject_identifier(b: dict) -> None:
    del document_of(b)["subject"]["identifier"]


def _no_attachment(b: dict) -> None:
    del document_of(b)["content"][0]["attachment"]


def _unreferenced_binary(b: dict) -> None:
    extra = copy.deepcopy(b["entry"][0])
    extra["fullUrl"] = "urn:uuid:00000000-0000-4000-8000-000000000000"
    b["entry"].append(extra)


def _bad_base64(b: dict) -> None:
    b["entry"][0]["resource"]["data"] = "not*base64*at*all"


def _content_type_mismatch(b: dict) -> None:
    b["entry"][0]["resource"]["contentType"] = "image/png"
    document_of(b)["content"][0]["attachment"]["contentType"] = "image/png"


def _attachment_type_differs(b: dict) -> None:
    document_of(b)["content"][0]["attachment"]["contentType"] = "image/png"


def _not_a_transaction(b: dict) -> None:
    b["type"] = "batch"


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (_wrong_resource_type, "'Media' is not accepted here"),
        (_no_subject_identifier, "subject must identify the patient by IPP"),
        (_no_attachment, "attachment"),
        (_unreferenced_binary, "Binary not referenced"),
        (_bad_base64, "Binary.data is not base64"),
        (_content_type_mismatch, "contentType mismatch"),
        (_attachment_type_differs, "contentType differs from its Binary's"),
        (_not_a_transaction, "Bundle.type must be transaction"),
    ],
    ids=lambda value: value.__name__.strip("_") if callable(value) else "",
)
def test_what_a_fhir_server_refuses_comes_back_in_words_and_nothing_is_stored(
    fhir: FhirServer, spoil: Callable[[dict], None], said: str
):
    bundle = build_bundle(RECORD, JPEG, "image/jpeg")
    spoil(bundle)

    with pytest.raises(RoundsClientError) as refused:
        asyncio.run(post_bundle(fhir.url, bundle))

    assert refused.value.code == "fhir_refused"
    assert said in refused.value.message
    assert fhir.store.documents == {} and fhir.store.binaries == {}


# --- `rounds record` against live daphne ------------------------------------------------------


@pytest.fixture(scope="module")
def fhir_cluster() -> Iterator[tuple[LiveCluster, FhirServer]]:
    with FhirServer(IPP_SYSTEM) as server:
        settings = {
            "ROUNDS_FHIR_BASE_URL": server.url,
            "ROUNDS_FHIR_IPP_SYSTEM": IPP_SYSTEM,
        }
        with live_cluster(1, settings=settings) as cluster:
            yield cluster, server


def add_stay(cluster: LiveCluster, patient_id: int, visit_number: str) -> None:
    """A stay of the patient around the photo's capture time (07:15 UTC, 23 November)."""
    cluster.manage(
        "shell",
        "-c",
        "from datetime import datetime, UTC; from patients.models import Admission; "
        f"Admission.objects.create(patient_id={patient_id}, ward='Plastic surgery', "
        "admitted_at=datetime(2026, 11, 23, 7, 0, tzinfo=UTC), "
        f"discharged_at=datetime(2026, 11, 26, tzinfo=UTC), visit_number={visit_number!r})",
    )


def audited_exports(cluster: LiveCluster) -> list[dict[str, Any]]:
    out = cluster.manage(
        "shell",
        "-c",
        "import json; from audit.models import AuditEvent; print(json.dumps([e.data for e in "
        "AuditEvent.objects.filter(action='photo.exported').order_by('id')]))",
    )
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.live
@pytest.mark.timeout(300)
def test_rounds_record_sends_the_decrypted_photo_and_rounds_keeps_the_ids(
    fhir_cluster: tuple[LiveCluster, FhirServer], tmp_path: Path
):
    cluster, fhir = fhir_cluster
    team = asyncio.run(make_team(cluster))
    server = cluster.servers[0]
    add_stay(cluster, team["patient"]["id"], "V-LIVE-1")

    async def post_photo() -> int:
        async with signed_in(server, "surgeon_bob", team) as bob:
            ack = await bob.send_photos(
                team["thread"], [phone_photo()], keywords=["hand"], consent="care"
            )
            page = await bob.library(patient=team["patient"]["id"])
        (item,) = [i for i in page["items"] if i["message"]["id"] == ack["message_id"]]
        return int(item["id"])

    attachment = asyncio.run(post_photo())
    env = {"ROUNDS_RECOVERY_SECRET": team["secrets"]["head_carol"]}

    out, _ = asyncio.run(
        run_rounds(cluster, "head_carol", "record", "--attachment", str(attachment), **env)
    )

    ((document_id, stored),) = fhir.store.documents.items()
    (binary,) = fhir.store.binaries.values()
    assert out.strip() == (
        f"attachment {attachment}: sent to the patient record "
        f"(DocumentReference/{document_id}, Binary/{binary.id})"
    )
    assert stored["content"][0]["attachment"]["url"] == f"Binary/{binary.id}"
    assert stored["subject"]["identifier"] == {
        "system": IPP_SYSTEM,
        "value": team["patient"]["ipp"],
    }
    assert stored["context"]["encounter"][0]["identifier"]["value"] == "V-LIVE-1"
    # The phone's DateTimeOriginal, 08:15 at +01:00, kept through the post.
    assert stored["content"][0]["attachment"]["creation"] == "2026-11-23T07:15:00+00:00"
    assert stored["author"][0]["identifier"]["value"] == "surgeon_bob"
    assert stored["authenticator"]["identifier"]["value"] == "head_carol"
    fetched, _ = asyncio.run(
        run_rounds(
            cluster, "head_carol", "fetch", "--attachment", str(attachment),
            "--out", str(tmp_path), **env,
        )
    )  # fmt: skip
    assert binary.data == Path(fetched.strip()).read_bytes()
    sha1 = base64.b64encode(hashlib.sha1(binary.data).digest()).decode()
    assert stored["content"][0]["attachment"]["hash"] == sha1

    async def exports() -> list[dict[str, Any]]:
        async with signed_in(server, "surgeon_bob", team, connect=False) as bob:
            record = await bob.call("GET", f"/api/library/photos/{attachment}/record")
        return record["exports"]

    (export,) = asyncio.run(exports())
    assert (export["document_reference"], export["binary"]) == (document_id, binary.id)
    assert (export["by"]["username"], export["server"]) == ("head_carol", fhir.url)
    (audited,) = audited_exports(cluster)
    assert audited["document_reference"] == document_id and audited["binary"] == binary.id
    assert team["patient"]["ipp"] not in json.dumps(audited)

    # A refusal of the FHIR server: said in words, exit 1, and nothing more recorded.
    fhir.store.ipp_system = "urn:oid:9.9.9"
    _, err = asyncio.run(
        run_rounds(cluster, "head_carol", "record", "--attachment", str(attachment), code=1, **env)
    )
    assert "fhir_refused" in err and "subject must identify the patient by IPP" in err
    assert len(asyncio.run(exports())) == 1
    assert len(audited_exports(cluster)) == 1
