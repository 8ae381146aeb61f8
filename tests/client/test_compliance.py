"""client/compliance.py and client/compliance_key.py on timelines the real server releases.

The ward (tests/support/hospital.py's hospital): Bob writes a note, then redacts it
with a reason; Alice posts a photo whose signed body names its keywords and
consent, and reads both. The released page comes from the case route
(compliance/api.py), then is opened offline with the compliance key, as is
or rewritten as a lying server would serve it.
"""

import argparse
import copy
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from chat.actions import check_post_message, check_read_receipt
from chat.redaction import check_redact_message
from client import compliance_key as key_module
from client.compliance import department_of, open_thread, review_thread
from client.compliance_cli import _from, _to, format_review
from client.compliance_key import compliance_key
from client.errors import RoundsClientError
from core.crypto import ChainHead, IdentityKeyPair, b64encode
from tests.live.forgeries import chain_under
from tests.support import Api, Hospital, sealed
from tests.support.cases import open_case
from tests.support.uploads import photo, post_photos

pytestmark = pytest.mark.django_db

NOTE = b"Wrong patient, sorry"


def photos_body(ref: dict[str, Any], text: str) -> bytes:
    """A photos body as the SDK signs it (docs/media.md), for `ref`'s uploads."""

    def blob(upload: str) -> dict[str, Any]:
        return {
            "upload": upload,
            "key": b64encode(bytes(32)),
            "sha256": "ab" * 32,
            "size": 4096,
            "media_type": "image/jpeg",
            "width": 640,
            "height": 480,
        }

    entry = {
        **blob(ref["upload"]),
        "captured_at": "2026-11-23T08:15:00+01:00",
        "keywords": ref["keywords"],
        "consent": ref["consent"],
        "annotates": None,
        "thumbnail": blob(ref["thumbnail"]),
    }
    return json.dumps({"type": "photos", "text": text, "photos": [entry]}).encode()


def post(h: Hospital, who: str, text: bytes) -> int:
    cmid = uuid.uuid4().hex
    envelope = sealed(h, who, h.thread, cmid, text)
    return check_post_message(h.user(who), h.thread.pk, cmid, envelope)["message_id"]


@pytest.fixture
def released(hospital: Hospital) -> dict[str, Any]:
    h = hospital
    first = post(h, "surgeon_bob", NOTE)
    ref = photo(h, "nurse_alice", keywords=("hand",), consent="teaching")
    cmid = uuid.uuid4().hex
    envelope = sealed(h, "nurse_alice", h.thread, cmid, photos_body(ref, "Dorsal hand, day 3"))
    post_photos(h, "nurse_alice", [ref], cmid=cmid, envelope=envelope)
    check_read_receipt(h.nurse_alice, h.thread.pk, 2)
    check_redact_message(h.surgeon_bob, first, "posted in the wrong thread")
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    response = Api(h.compliance_dan).get(
        f"/api/compliance/cases/{case.pk}/threads/{h.thread.pk}/timeline"
    )
    assert response.status_code == 200, response.content
    return response.json()


def review(h: Hospital, page: dict[str, Any], admin: str | None = None) -> dict[str, Any]:
    assert h.compliance_key and h.admin_key
    return review_thread([page], h.compliance_key, admin or h.admin_key.fingerprint)


def test_the_whole_timeline_opens_with_every_mark(hospital, released):
    h = hospital
    done = review(h, released)
    assert done["failed"] == 0
    assert [v["check"] for v in done["key_versions"]] == [{"ok": True}]
    note, pictured = done["messages"]
    assert note["text"] == NOTE.decode() and note["check"] == {"ok": True}
    assert note["redacted"]["by"] == h.surgeon_bob.pk
    assert note["redacted"]["reason"] == "posted in the wrong thread"
    assert note["redacted"]["right"] == "sender"
    assert pictured["text"] == "Dorsal hand, day 3" and pictured["redacted"] is None
    [shown] = pictured["photos"]
    assert (shown["keywords"], shown["consent"]) == (["hand"], "teaching")
    assert shown["attachment"] == released["attachments"][0]["id"]
    for message in (note, pictured):
        assert [s["user"]["username"] for s in message["seen_by"]] == ["nurse_alice"]
        assert message["sent_at"]
    members = {m["user"] for m in note["members"]}
    assert members == {h.head_carol.pk, h.surgeon_bob.pk, h.nurse_alice.pk}
    assert [s["change"] for s in done["statements"]] == ["admit", "admit", "admit"]
    text = "\n".join(format_review(done))
    assert "REDACTED" in text and "posted in the wrong thread" in text
    assert "consent teaching" in text and "seen by nurse_alice" in text
    assert "every check passed" in text


def test_a_tampered_envelope_is_reported_not_hidden(hospital, released):
    h = hospital
    page = copy.deepcopy(released)
    envelope = page["messages"][1]["envelope"]
    ciphertext = bytearray(envelope["ciphertext"].encode())
    ciphertext[10] = ord("A") if ciphertext[10] != ord("A") else ord("B")
    envelope["ciphertext"] = ciphertext.decode()
    done = review(h, page)
    assert done["failed"] == 1
    note, tampered = done["messages"]
    assert note["check"]["ok"] and note["text"] == NOTE.decode()
    assert tampered["check"]["code"] == "bad_signature"
    assert tampered["text"] is None and tampered["photos"] == []
    assert tampered["seq"] == 2 and tampered["seen_by"]  # still in the timeline
    assert "CHECK FAILED: bad_signature" in "\n".join(format_review(done))


def test_an_envelope_moved_to_another_message_is_a_mismatch(hospital, released):
    page = copy.deepcopy(released)
    page["messages"][0]["client_msg_id"] = "another-id-0001"
    done = review(hospital, page)
    assert done["messages"][0]["check"]["code"] == "envelope_mismatch"


def test_a_chain_not_rooted_in_the_pinned_admin_key_stops_the_review(hospital, released):
    h = hospital
    page = copy.deepcopy(released)
    servers = IdentityKeyPair.generate()
    department = page["department"]
    department["chain"] = chain_under(
        servers, h.plastic.pk, h.surgeon_bob.pk, h.keys["surgeon_bob"]
    )(department["chain"])
    with pytest.raises(RoundsClientError) as refused:
        review(h, page)
    assert refused.value.code == "admin_key_mismatch"
    # The server's chain, pinned to another admin key than the institution's: the same.
    with pytest.raises(RoundsClientError) as refused:
        review(h, released, admin=servers.fingerprint)
    assert refused.value.code == "admin_key_mismatch"


def test_a_chain_with_a_statement_left_out_stops_the_review(hospital, released):
    page = copy.deepcopy(released)
    del page["department"]["chain"]["statements"][1]
    with pytest.raises(RoundsClientError) as refused:
        review(hospital, page)
    assert refused.value.code == "membership_unverified"


def test_two_pages_with_two_chains_are_a_fork(hospital, released):
    h = hospital
    other = copy.deepcopy(released)
    forged = chain_under(h.admin_key, h.plastic.pk, h.surgeon_bob.pk, h.keys["surgeon_bob"])
    other["department"]["chain"] = forged(other["department"]["chain"])
    other["messages"] = []
    with pytest.raises(RoundsClientError) as refused:
        review_thread([other, released], h.compliance_key, h.admin_key.fingerprint)
    assert refused.value.code == "membership_fork"


def test_a_chain_that_does_not_extend_the_head_this_machine_verified_stops_the_review(
    hospital, released
):
    h = hospital
    head = ChainHead(**released["department"]["chain"]["head"])
    assert open_thread([released], h.compliance_key, h.admin_key.fingerprint, head)
    cut = copy.deepcopy(released)
    del cut["department"]["chain"]["statements"][-1]
    for page, known, code in (
        (cut, head, "membership_rollback"),
        (released, ChainHead(head.seq, "ab" * 32), "membership_fork"),
    ):
        with pytest.raises(RoundsClientError) as refused:
            open_thread([page], h.compliance_key, h.admin_key.fingerprint, known)
        assert refused.value.code == code


def test_a_forged_key_version_fails_every_message_under_it(hospital, released):
    page = copy.deepcopy(released)
    signed = page["department"]["key_versions"][0]["signed"]
    signed["record"]["creator_user"] = hospital.nurse_alice.pk
    done = review(hospital, page)
    [version] = done["key_versions"]
    assert version["check"]["code"] == "key_version_unauthorized"
    assert [m["check"]["code"] for m in done["messages"]] == ["key_version_unauthorized"] * 2


def test_a_wrap_for_another_compliance_key_opens_nothing(hospital, released):
    h = hospital
    other = IdentityKeyPair.generate()
    done = review_thread([released], other, h.admin_key.fingerprint)
    assert done["key_versions"][0]["check"]["code"] == "no_room_key"
    assert done["failed"] == 2 and not done["server_compliance_key_is_this_one"]


def test_the_same_envelope_twice_is_a_duplicate(hospital, released):
    page = copy.deepcopy(released)
    again = {**copy.deepcopy(page["messages"][0]), "id": 999999, "seq": 3}
    page["messages"].append(again)
    done = review(hospital, page)
    assert done["messages"][2]["check"]["code"] == "duplicate"


# --- the key file -----------------------------------------------------------------------


def key_file(tmp_path: Path, pair: IdentityKeyPair, name: str = "compliance.key") -> Path:
    path = tmp_path / name
    path.write_text(pair.to_bytes().hex() + "\n")
    return path


def test_the_pinned_key_file_opens_and_its_buffers_are_zeroed(tmp_path, monkeypatch):
    pair = IdentityKeyPair.generate()
    buffers: list[bytearray] = []
    parse = key_module.parse_key_file

    def keeping(raw: bytearray, path: Any = "") -> bytearray:
        buffers.extend([raw, secret := parse(raw, path)])
        return secret

    monkeypatch.setattr(key_module, "parse_key_file", keeping)
    with compliance_key(key_file(tmp_path, pair), pair.fingerprint) as opened:
        assert opened == pair
        assert any(buffers[1])
    assert buffers and all(not any(buffer) for buffer in buffers)


def test_another_key_than_the_pinned_one_is_refused(tmp_path):
    pinned, other = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    path = key_file(tmp_path, other)
    with pytest.raises(RoundsClientError) as refused, compliance_key(path, pinned.fingerprint):
        raise AssertionError("not reached")
    assert refused.value.code == "not_the_compliance_key"
    assert refused.value.data == {"file": other.fingerprint, "pinned": pinned.fingerprint}


@pytest.mark.parametrize("content", [b"", b"zz" * 64, b"ab" * 63, b"ab" * 5000])
def test_a_file_that_is_no_key_is_refused(tmp_path, content):
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(RoundsClientError) as refused, compliance_key(path, "0" * 64):
        raise AssertionError("not reached")
    assert refused.value.code == "malformed_key_file"


# --- the command's arguments ----------------------------------------------------------


def test_case_dates_reach_the_server_with_an_offset():

    start, end = (
        datetime.fromisoformat(_from("2026-11-01")),
        datetime.fromisoformat(_to("2026-11-30")),
    )
    assert start.tzinfo and (start.hour, start.minute) == (0, 0)
    assert end.tzinfo and (end.day, end.hour, end.minute) == (30, 23, 59)
    assert _from("2026-11-01T08:00:00+01:00") == "2026-11-01T08:00:00+01:00"
    with pytest.raises(argparse.ArgumentTypeError):
        _from("yesterday")


def test_a_page_without_the_shape_of_a_release_is_refused(hospital, released):
    h = hospital
    page = copy.deepcopy(released)
    del page["department"]["key_versions"][0]["compliance_wraps"]
    del page["thread"]
    with pytest.raises(RoundsClientError) as refused:
        review(h, page)
    assert refused.value.code == "invalid_release"
    with pytest.raises(RoundsClientError) as refused:
        department_of([{"department": None}])
    assert refused.value.code == "invalid_release"


def test_a_consult_opens_with_its_thread_keys_compliance_wraps(hospital):
    """What a consult's guest and members said stays reviewable under a case: the thread
    key's versions are wrapped for the compliance key (docs/crypto.md §14)."""
    from tests.support.consults import consult_sealed, open_consult

    h = hospital
    key = open_consult(h)
    for who, text in (("nurse_ines", b"Flap dusky: come?"), ("surgeon_bob", b"On my way")):
        cmid = uuid.uuid4().hex
        envelope = consult_sealed(h, who, key.thread, key, cmid, text)
        check_post_message(h.user(who), key.thread, cmid, envelope)
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    response = Api(h.compliance_dan).get(
        f"/api/compliance/cases/{case.pk}/threads/{key.thread}/timeline"
    )
    assert response.status_code == 200, response.content
    done = review(h, response.json())
    assert done["failed"] == 0
    assert [v["check"] for v in done["thread_key_versions"]] == [{"ok": True}]
    assert [m["text"] for m in done["messages"]] == ["Flap dusky: come?", "On my way"]
