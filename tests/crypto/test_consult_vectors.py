"""consult.json (tests/vectors/consult.py), read as another implementation would read it.

The browser runs the same checks in tests/browser/vector_checks.js.
"""

import json
from pathlib import Path

import pytest

from core.crypto import (
    CryptoError,
    IdentityKeyPair,
    PublicIdentity,
    RoomKey,
    SignedKeyVersion,
    SignedStatement,
    WrapRecord,
    b64decode,
    check_current,
    open_envelope,
    replay_membership_chain,
    unwrap_room_key,
    verify_key_version,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "consult.json").read_text("utf-8")
)
PEOPLE = {
    name: IdentityKeyPair.from_bytes(b64decode(entry["secret"]))
    for name, entry in VECTORS["identities"].items()
}
ADMIN = PEOPLE[VECTORS["admin_identity"]].public
KEYS = [pair.public for name, pair in PEOPLE.items() if name != VECTORS["admin_identity"]]


def replay(statements: list[dict]):
    """Parse, then replay; a statement that does not parse is refused at its index too."""
    signed = []
    for index, item in enumerate(statements):
        try:
            signed.append(SignedStatement.from_dict(item))
        except CryptoError as error:
            error.statement_index = index
            raise
    return replay_membership_chain(signed, admin_key=ADMIN, keys=KEYS)


CHAIN = replay(VECTORS["chain"])


def key_named(name: str) -> RoomKey:
    entry = VECTORS["keys"][name]
    key = RoomKey(
        b64decode(entry["key"]),
        department=entry["department"],
        version=entry["version"],
        thread=entry["thread"],
    )
    assert key.commitment == b64decode(entry["commitment"])
    return key


def name_of(thread: int | None, version: int) -> str:
    return f"room/{version}" if thread is None else f"{thread}/{version}"


def test_the_chain_replays_with_its_members_guests_and_exclusions():
    assert CHAIN.head.to_dict() == VECTORS["head"]
    thread = VECTORS["thread"]
    for seq, members in VECTORS["members_at"].items():
        for user in VECTORS["users"].values():
            member = CHAIN.member_at(user, int(seq))
            got = None if member is None else [member.role, member.fingerprint]
            assert got == members.get(str(user)), (seq, user)
    for seq, guests in VECTORS["guests_at"].items():
        for user in VECTORS["users"].values():
            guest = CHAIN.guest_at(thread, user, int(seq))
            assert (guest and guest.fingerprint) == guests.get(str(user)), (seq, user)
    for seq, exclusions in VECTORS["last_exclusion_at"].items():
        assert CHAIN.last_exclusion_at(int(seq)) == exclusions["room"]
        assert CHAIN.last_exclusion_at(int(seq), thread) == exclusions["thread"]
    assert CHAIN.guests_of(thread) == {}


def test_a_thread_key_and_a_room_key_of_the_same_bytes_commit_differently():
    thread_key = key_named(f"{VECTORS['thread']}/1")
    as_room_key = RoomKey(bytes(thread_key), department=thread_key.department, version=1)
    assert as_room_key.commitment != thread_key.commitment


@pytest.mark.parametrize("name", sorted(VECTORS["key_versions"]))
def test_key_versions_verify_and_are_current_or_not(name):
    record = verify_key_version(SignedKeyVersion.from_dict(VECTORS["key_versions"][name]), CHAIN)
    error = VECTORS["current_at_head"][name]
    if error is None:
        check_current(record, CHAIN)
    else:
        with pytest.raises(CryptoError) as caught:
            check_current(record, CHAIN)
        assert caught.value.code == error


def test_a_guest_never_introduces_a_key_version():
    case = VECTORS["version_by_the_guest"]
    with pytest.raises(CryptoError) as caught:
        verify_key_version(SignedKeyVersion.from_dict(case["signed"]), CHAIN)
    assert caught.value.code == case["error"]


@pytest.mark.parametrize("case", VECTORS["wraps"], ids=lambda c: c["recipient"])
def test_wraps_open_into_the_thread_key(case):
    opened = unwrap_room_key(
        WrapRecord.from_dict(case["record"]),
        recipient=PEOPLE[case["recipient"]],
        wrapper=PEOPLE[case["wrapper"]].public,
    )
    assert opened == key_named(name_of(case["thread"], case["version"]))


@pytest.mark.parametrize("case", VECTORS["envelopes"], ids=lambda c: c["name"])
def test_envelopes_in_a_consult(case):
    name = name_of(case["key"]["thread"], case["key"]["version"])
    record = verify_key_version(SignedKeyVersion.from_dict(VECTORS["key_versions"][name]), CHAIN)
    if case["error"] is None:
        _, plaintext = open_envelope(
            case["envelope"], chain=CHAIN, record=record, room_key=key_named(name)
        )
        assert plaintext == b64decode(case["plaintext"])
        return
    with pytest.raises(CryptoError) as caught:
        open_envelope(case["envelope"], chain=CHAIN, record=record, room_key=key_named(name))
    assert caught.value.code == case["error"]


@pytest.mark.parametrize("case", VECTORS["invalid_chains"], ids=lambda c: c["name"])
def test_broken_consult_chains_are_refused_at_their_statement(case):
    with pytest.raises(CryptoError) as caught:
        replay(case["chain"])
    assert caught.value.code == case["error"]
    assert getattr(caught.value, "statement_index", None) == case["statement_index"]


def test_guest_keys_are_required_for_the_replay():
    without_eve = [key for key in KEYS if key != PEOPLE["emergency_eve"].public]
    signed = [SignedStatement.from_dict(item) for item in VECTORS["chain"][:3]]
    with pytest.raises(CryptoError, match="guest 41 of thread 877"):
        replay_membership_chain(signed, admin_key=ADMIN, keys=without_eve)
    assert isinstance(PEOPLE["emergency_eve"].public, PublicIdentity)
