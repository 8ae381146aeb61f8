"""Issue 17's text findings, replayed over HTTP and a socket: NUL and lone surrogates in a
thread title, a patient search, a sign-in, query strings and a frame's id.

Each was a 500 (PostgreSQL) or a stored surrogate (SQLite); the edges' one check
(rounds/text.py) answers a typed `invalid_utf8` instead. These tests run on both
databases (DATABASE_URL=postgres://… runs them on PostgreSQL).
"""

import json

import pytest
from django.test import Client

from accounts.models import AuthSession
from audit.models import AuditEvent
from chat.models import Thread
from tests.support import Api
from tests.support.api import assert_refused
from tests.support.sockets import assert_alive, connect_as, finish, next_id, recv

UNSTORABLE = ["\ud800", "a\x00b"]


def post_raw(client: Client, path: str, body: dict, **extra) -> object:
    """json.dumps escapes a lone surrogate as \\ud800: the request is valid UTF-8 JSON."""
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


def refused_field(response) -> str:
    """The field a typed `invalid_utf8` refusal names (and nothing else in its data)."""
    data = assert_refused(response, 400, "invalid_utf8")["data"]
    assert set(data) == {"field"}
    return data["field"]


@pytest.mark.django_db
@pytest.mark.parametrize("text", UNSTORABLE)
def test_a_thread_title_that_cannot_be_stored_is_refused(hospital, text):
    h = hospital
    bob = Api(h.surgeon_bob)
    before = Thread.objects.count()
    body = {"department": h.plastic.pk, "patient": h.patient.pk, "title": f"Flap {text}"}
    assert refused_field(post_raw(bob.client, "/api/threads", body, **bob.auth)) == "title"
    assert Thread.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize("text", UNSTORABLE)
def test_a_patient_search_name_that_cannot_be_stored_is_refused(hospital, text):
    bob = Api(hospital.surgeon_bob)
    body = {"name": f"Lef{text}"}
    searches = AuditEvent.objects.filter(action="patient.searched").count()
    assert refused_field(post_raw(bob.client, "/api/patients/search", body, **bob.auth)) == "name"
    assert AuditEvent.objects.filter(action="patient.searched").count() == searches


@pytest.mark.django_db
@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize("field", ["username", "password"])
def test_a_sign_in_that_cannot_be_stored_is_refused(hospital, text, field):
    """The login goes through the same JSON parser as every other route."""
    body = {"username": "surgeon_bob", "password": "not the password", field: f"x{text}"}
    client = Client()
    assert refused_field(post_raw(client, "/api/auth/login", body)) == field
    assert "sessionid" not in client.cookies
    assert not AuthSession.objects.filter(user=hospital.surgeon_bob).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["%00", "1%00"])
def test_a_query_parameter_with_nul_is_refused_on_a_get_route(hospital, raw):
    h = hospital
    response = Api(h.surgeon_bob).get(f"/api/threads/{h.thread.pk}/messages?before_seq={raw}")
    assert refused_field(response) == "before_seq"


@pytest.mark.django_db
def test_a_percent_encoded_surrogate_in_a_query_is_replaced_never_a_500(hospital):
    """UTF-8 cannot encode a surrogate: %ED%A0%80 arrives as U+FFFD, which is storable."""
    h = hospital
    path = f"/api/threads/{h.thread.pk}/messages?before_seq=%ED%A0%80"
    assert_refused(Api(h.surgeon_bob).get(path), 400, "invalid_request")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/uploads/a%00b", "/api/uploads/a%00b/content"])
def test_nul_in_a_path_parameter_is_never_a_500(hospital, path):
    """Path parameters skip the query parser: a NUL there must still find nothing."""
    response = Api(hospital.surgeon_bob).get(path)
    assert response.status_code in (400, 404), response.content
    assert response.json()["code"] in ("invalid_utf8", "not_found")


# --- The socket -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("frame_id", ["\ud800", "ok-\udfff", "nul-\x00"])
@pytest.mark.parametrize("as_bytes", [False, True])
async def test_a_frame_id_that_cannot_be_stored_is_never_echoed_and_the_socket_stays(
    live_hospital, frame_id, as_bytes
):
    """The finding: the surrogate was echoed in the error and the socket closed with 1011.
    The refusal is typed (invalid_utf8, naming the field), its id null, the socket open."""
    bob, _ = await connect_as(live_hospital.surgeon_bob)
    frame = json.dumps({"type": "ping", "id": frame_id})
    if as_bytes:
        await bob.send_to(bytes_data=frame.encode())
    else:
        await bob.send_to(text_data=frame)
    error = await recv(bob)
    assert error["type"] == "error" and error["id"] is None
    assert error["code"] == "invalid_utf8" and error["data"] == {"field": "id"}
    await assert_alive(bob)
    await bob.send_to(text_data=json.dumps({"type": "ping", "id": next_id("after")}))
    assert (await recv(bob))["type"] == "ack"
    await finish(bob)
