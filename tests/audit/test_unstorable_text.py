"""Text no database can store is refused at the edges, with a typed error, never a 500.

The attack of the compliance review: a report request whose `case` held a
lone UTF-16 surrogate ("\\ud800", valid JSON) was accepted on SQLite, and its
audit entry then failed to encode every time the sealer tried it, so nothing
after it was chained. On PostgreSQL the same request, or NUL ("\\u0000",
"%00"), failed with a 500. Each edge now refuses such text before any schema
or action sees it (rounds/text.py), so no audit entry is written.
"""

import json
import uuid
from urllib.parse import quote

import pytest
from channels.db import database_sync_to_async

from audit.models import AuditEvent
from chat.actions import check_post_message
from rounds.text import check_storable, storable, unstorable_field
from tests.support import Api, sealed
from tests.support.cases import case_header
from tests.support.sockets import assert_alive, connect_as, finish, next_id, recv

SURROGATES = ["\ud800", "\udfff", "case \udc00 17"]
UNSTORABLE = [*SURROGATES, "a\x00b"]
COMPLIANCE = {"case": "CASE-2026-17", "reason": "patient request of 2026-11-20"}
WITH_NUL = "CASE\x00"


def raw_post(api: Api, path: str, body: dict) -> object:
    """json.dumps escapes a lone surrogate as \\ud800: the bytes are valid UTF-8 JSON."""
    return api.client.post(path, json.dumps(body), content_type="application/json", **api.auth)


def assert_refused(response, field: str) -> None:
    assert response.status_code == 400, response.content
    assert response.json() == {
        "code": "invalid_utf8",
        "message": (
            "Text must be valid Unicode without NUL characters "
            "(a lone surrogate such as \\ud800 cannot be stored)."
        ),
        "data": {"field": field},
    }


# --- The shared check -----------------------------------------------------------------


@pytest.mark.parametrize("text", UNSTORABLE)
def test_unstorable_text_is_found(text):
    assert not storable(text)
    assert unstorable_field({"a": [1, {"b": text}]}) == "a.1.b"
    assert unstorable_field({text: 1}) == "(key)"
    assert unstorable_field(text) == "(value)"


@pytest.mark.parametrize("text", ["", "plain", "é à ü", "😀 astral", "tab\tnewline\n", "\ufffd"])
def test_storable_text_passes(text):
    assert storable(text)
    check_storable({"a": [text, {text: text}], "n": 1, "x": None})


def test_a_deeply_nested_document_costs_no_recursion():
    deep: object = "\ud800"
    for _ in range(5000):
        deep = [deep]
    assert unstorable_field(deep) is not None


# --- The JSON API ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize("field", ["case", "reason"])
def test_a_report_with_unstorable_compliance_text_is_refused_and_audits_nothing(
    hospital, text, field
):
    h = hospital
    before = AuditEvent.objects.count()
    body = {"patient": h.patient.pk, "photos": 1, **COMPLIANCE, field: text}
    assert_refused(raw_post(Api(h.compliance_dan), "/api/library/reports", body), field)
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "field"),
    [("photos", "ipp"), ("photos", "date_to"), ("departments/{department}/stats", "date_from")],
)
def test_a_library_query_parameter_with_nul_is_refused(hospital, path, field):
    """The filters reach the audit trail; a compliance case goes in a header, not here."""
    h = hospital
    before = AuditEvent.objects.count()
    url = f"/api/library/{path.format(department=h.plastic.pk)}?{field}={quote(WITH_NUL)}"
    assert_refused(Api(h.compliance_dan).get(url, **case_header(1)), field)
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["case", "reason"])
def test_a_download_query_parameter_with_nul_is_refused(hospital, field):
    """The content endpoint reads its query string itself, outside the JSON API's parser."""
    h = hospital
    before = AuditEvent.objects.count()
    query = "&".join(f"{k}={quote(v)}" for k, v in {**COMPLIANCE, field: "CASE\x00"}.items())
    response = Api(h.compliance_dan).get(f"/api/uploads/{uuid.uuid4()}/content?{query}")
    assert_refused(response, field)
    assert AuditEvent.objects.count() == before


def test_a_percent_encoded_surrogate_in_a_query_never_becomes_one():
    """UTF-8 cannot encode a surrogate: Django decodes %ED%A0%80 to U+FFFD, which is storable."""
    from django.http import QueryDict

    from rounds.http import StorableParser

    parsed = StorableParser().parse_querydict(QueryDict("case=%ED%A0%80&reason=why"), [], None)
    assert parsed == {"case": "\ufffd\ufffd\ufffd", "reason": "why"}


@pytest.mark.django_db
@pytest.mark.parametrize("text", UNSTORABLE)
def test_a_redaction_reason_over_http_is_refused(hospital, text):
    h = hospital
    cmid = "bob-unstorable-1"
    message_id = check_post_message(
        h.surgeon_bob, h.thread.pk, cmid, sealed(h, "surgeon_bob", h.thread, cmid)
    )["message_id"]
    path = f"/api/messages/{message_id}/redact"
    assert_refused(raw_post(Api(h.surgeon_bob), path, {"reason": text}), "reason")
    assert not AuditEvent.objects.filter(action="message.redacted").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("text", UNSTORABLE)
def test_a_login_with_an_unstorable_username_is_refused_not_a_500(hospital, text):
    """A failed sign-in records the username typed: it must be storable too."""
    from django.test import Client

    before = AuditEvent.objects.count()
    body = json.dumps({"username": f"bob{text}", "password": "x"})
    response = Client().post("/api/auth/login", body, content_type="application/json")
    assert_refused(response, "username")
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_a_key_in_a_body_is_checked_too(hospital):
    h = hospital
    body = {"patient": h.patient.pk, "photos": 1, **COMPLIANCE, "\ud800": 1}
    assert_refused(raw_post(Api(h.compliance_dan), "/api/library/reports", body), "(key)")


# --- The socket -----------------------------------------------------------------------


async def redact_frame(communicator, reason: str, frame_id: str) -> dict:
    await communicator.send_to(
        text_data=json.dumps({"type": "message.redact", "id": frame_id, "message": 1, **reason})
    )
    return await recv(communicator)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("text", UNSTORABLE)
async def test_a_socket_frame_with_unstorable_text_is_refused_and_the_socket_stays(
    live_hospital, text
):
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    before = await database_sync_to_async(AuditEvent.objects.count)()
    frame_id = next_id("redact")
    error = await redact_frame(bob, {"reason": text}, frame_id)
    assert error["type"] == "error" and error["id"] == frame_id
    assert error["code"] == "invalid_utf8" and error["data"] == {"field": "reason"}
    await assert_alive(bob)
    assert await database_sync_to_async(AuditEvent.objects.count)() == before
    await finish(bob)


@pytest.mark.django_db(transaction=True)
async def test_a_socket_frame_whose_id_cannot_be_stored_is_answered_without_it(live_hospital):
    """The id is echoed in the error frame: a surrogate there could not even be sent back."""
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    error = await redact_frame(bob, {"reason": "why"}, "id-\ud800")
    assert error["type"] == "error" and error["id"] is None
    assert error["code"] == "invalid_utf8" and error["data"] == {"field": "id"}
    await assert_alive(bob)
    await finish(bob)
