"""A room key version's signed record (docs/crypto.md §7), as the server checks it.

The record is signed by the member publishing the version, with their
published key; it names this department and version, the chain's current
head (else a conflict naming the head) and a creator the chain holds with
that key (else `not_attested`). Every refusal leaves everything as it was.
"""

import pytest

from core.crypto import CONTEXT_KEY_VERSION, ChainHead, RoomKey, SignedKeyVersion, b64encode
from rooms.models import Department
from tests.rooms.keyring import EVERYONE, Keyed, keys_path, state
from tests.support import assert_refused
from tests.support.tamper import flip_b64

pytestmark = pytest.mark.django_db


# --- The version's record ----------------------------------------------------------------


def _record_signed_by_alice(k: Keyed) -> dict:
    """Names bob as creator, with his fingerprint, but alice signed it."""
    record = SignedKeyVersion.from_dict(k.record("surgeon_bob", 1)).record
    signature = k.pairs["nurse_alice"].sign(CONTEXT_KEY_VERSION, record.signed_bytes())
    return SignedKeyVersion(record, signature).to_dict()


def _record_altered(k: Keyed) -> dict:
    signed = k.record("surgeon_bob", 1)
    other = b64encode(RoomKey.generate(department=k.h.plastic.pk, version=1).commitment)
    return {**signed, "record": {**signed["record"], "commitment": other}}


BAD_RECORDS = {
    "signed by someone else": _record_signed_by_alice,
    "another creator's record": lambda k: k.record("nurse_alice", 1),
    "signature flipped": lambda k: {
        **(r := k.record("surgeon_bob", 1)),
        "sig": flip_b64(r["sig"]),
    },
    "altered after signing": _record_altered,
}


@pytest.mark.parametrize("make", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_a_record_not_signed_by_the_caller_is_refused(attested: Keyed, make):
    """Bob posts a version whose record he did not sign as it stands."""
    k = attested
    record = make(k)
    before = state(k.h)
    response = k.publish_version("surgeon_bob", 1, EVERYONE, record=record)
    assert_refused(response, 400, "bad_signature")
    assert state(k.h) == before


def test_a_record_naming_a_replaced_key_of_the_caller_is_refused(attested: Keyed):
    """The record names the creator's published key: Bob's old one signs no new version."""
    k = attested
    old = k.pairs["surgeon_bob"]
    k.publish("surgeon_bob", replace=True)
    new = k.pairs["surgeon_bob"]
    k.pairs["surgeon_bob"] = old
    record = k.record("surgeon_bob", 1)
    k.pairs["surgeon_bob"] = new
    before = state(k.h)
    response = k.publish_version("surgeon_bob", 1, EVERYONE, record=record)
    assert_refused(response, 400, "bad_signature")
    assert state(k.h) == before


def _vascular_record(k: Keyed) -> dict:
    vascular_key = k.key(1, department=k.h.vascular.pk)
    return k.record("surgeon_bob", 1, room_key=vascular_key, head=k.head)


@pytest.mark.parametrize(
    "make",
    [_vascular_record, lambda k: k.record("surgeon_bob", 2)],
    ids=["another department", "another version"],
)
def test_a_record_of_another_department_or_version_is_refused(attested: Keyed, make):
    k = attested
    record = make(k)
    before = state(k.h)
    response = k.publish_version("surgeon_bob", 1, EVERYONE, record=record)
    assert_refused(response, 400, "invalid_request")
    assert state(k.h) == before


@pytest.mark.parametrize(
    "record",
    [None, {"v": 1, "department": 1, "version": 1}, {"record": {}, "sig": ""}],
    ids=["no record (format 1 body)", "format 1 record", "empty record"],
)
def test_a_missing_or_unparsable_record_is_an_invalid_request(attested: Keyed, record):
    k = attested
    body = {"version": 1, "wraps": k.wraps(1, "surgeon_bob", EVERYONE)}
    if record is not None:
        body["record"] = record
    before = state(k.h)
    assert_refused(k.api("surgeon_bob").post(keys_path(k.h), body), 400, "invalid_request")
    assert state(k.h) == before


def test_a_version_made_at_a_head_the_chain_moved_on_from_is_a_conflict(attested: Keyed):
    k = attested
    stale = k.record("surgeon_bob", 1)
    k.admit_in_tables("locum_fred")
    assert k.attest("locum_fred").status_code == 201
    recipients = (*EVERYONE, "locum_fred")
    before = state(k.h)
    body = assert_refused(
        k.publish_version("surgeon_bob", 1, recipients, record=stale), 409, "conflict"
    )
    assert body["data"] == {"head": k.head.to_dict()} and k.head.seq == 4
    # A head the chain never had is no better.
    made_up = ChainHead(4, "ab" * 32)
    record = k.record("surgeon_bob", 1, head=made_up)
    body = assert_refused(
        k.publish_version("surgeon_bob", 1, recipients, record=record), 409, "conflict"
    )
    assert body["data"] == {"head": k.head.to_dict()}
    assert state(k.h) == before
    # Made again at the head, it is kept.
    assert k.publish_version("surgeon_bob", 1, recipients).status_code == 201
    assert Department.objects.get(pk=k.h.plastic.pk).key_chain_seq == 4


def _unsigned_admission(k: Keyed) -> str:
    k.admit_in_tables("locum_fred")
    return "locum_fred"


def _replaced_key(k: Keyed) -> str:
    k.publish("surgeon_bob", replace=True)
    return "surgeon_bob"


@pytest.mark.parametrize(
    "make", [_unsigned_admission, _replaced_key], ids=["admitted unsigned", "key not re-signed"]
)
def test_a_creator_the_chain_does_not_hold_is_not_attested(attested: Keyed, make):
    """A member in the tables whose key no head has signed cannot make a version: clients
    would refuse it (docs/crypto.md §7)."""
    k = attested
    creator = make(k)
    before = state(k.h)
    recipients = tuple({*EVERYONE, creator})
    body = assert_refused(k.publish_version(creator, 1, recipients), 403, "not_attested")
    assert "data" not in body
    assert state(k.h) == before


def test_before_any_signed_statement_nobody_is_attested(keyed: Keyed):
    before = state(keyed.h)
    assert_refused(keyed.publish_version("head_carol", 1, EVERYONE), 403, "not_attested")
    assert state(keyed.h) == before
