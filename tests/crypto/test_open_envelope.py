"""The reader's checks: open_envelope against the verified chain, key version and room key.

Department 12 as in conftest.py: the admin key appoints head_carol (1), she
admits nurse_alice (2) and surgeon_bob (3) and makes Bob a head (4), Bob
removes Alice (5), Carol replaces Bob's key with his new phone's (6). Key
versions: 1 by Carol at 2, 2 by Bob at 4, 3 by Carol at 5, 4 by Bob at 6.
`write_envelope(plastic_surgery, room_keys, sender, seq, version)` is the
sender writing at statement `seq` under `version`, with the key the chain
held for them there.
"""

import pytest

from core.crypto import (
    BadSignature,
    ChainFork,
    ChainWithheld,
    DecryptionFailed,
    InvalidEnvelope,
    KeyCommitmentMismatch,
    RoomKey,
    SenderNotMember,
    StaleKeyVersion,
    b64encode,
    open_envelope,
    parse_envelope,
    verify_envelope,
    verify_envelope_in_chain,
)
from core.crypto.envelope import check_key_version_of
from tests.crypto.support import (
    ALICE,
    BOB,
    CARDIOLOGY,
    CAROL,
    DAN,
    PLAINTEXT,
    raises_exactly,
    resign,
    with_header,
    write_envelope,
)


@pytest.fixture(scope="module")
def chain(plastic_surgery):
    return plastic_surgery.replay()


def opened(envelope, chain, versions, room_keys, version):
    return open_envelope(
        envelope, chain=chain, record=versions[version].record, room_key=room_keys[version]
    )


@pytest.mark.parametrize(
    "sender, seq, version",
    [
        (BOB, 6, 4),  # now, with his new phone
        (CAROL, 6, 4),
        (CAROL, 5, 3),
        (BOB, 5, 3),
        (ALICE, 4, 2),  # before her removal, under a version she held
        (BOB, 4, 2),
        (CAROL, 2, 1),
        (ALICE, 3, 1),
    ],
)
def test_members_messages_open(plastic_surgery, chain, versions, room_keys, sender, seq, version):
    envelope = write_envelope(plastic_surgery, room_keys, sender, seq, version)
    header, plaintext = opened(envelope, chain, versions, room_keys, version)
    assert plaintext == PLAINTEXT
    assert (header.sender, header.head, header.key_version) == (
        sender,
        plastic_surgery.head_at(seq),
        version,
    )
    assert verify_envelope_in_chain(envelope, chain) == header
    check_key_version_of(header, versions[version].record, chain)


@pytest.mark.parametrize(
    "sender, seq, version",
    [
        (ALICE, 5, 2),  # after her removal
        (ALICE, 6, 2),
        (ALICE, 5, 3),
        (DAN, 6, 4),  # never admitted
        (BOB, 2, 1),  # not yet admitted
        (CAROL, 0, 1),  # the empty chain has no members
    ],
)
def test_a_sender_who_was_not_a_member_at_their_head(
    plastic_surgery, chain, versions, room_keys, sender, seq, version
):
    envelope = write_envelope(plastic_surgery, room_keys, sender, seq, version)
    with raises_exactly(SenderNotMember, f"user {sender} was not a member at statement {seq}"):
        opened(envelope, chain, versions, room_keys, version)
    with raises_exactly(SenderNotMember):
        verify_envelope_in_chain(envelope, chain)


def test_a_removed_member_writing_from_the_past_opens(plastic_surgery, chain, versions, room_keys):
    """The documented limit (docs/crypto.md, section 13, "A removed member writing 'from the
    past'"): Alice, removed at 5, names head 4 and version 2, which she held, and a late
    clock. Without trusted time, readers accept it as written then; they show its sent_at."""
    late = "2025-06-01T12:00:00.000Z"
    envelope = write_envelope(plastic_surgery, room_keys, ALICE, 4, 2, sent_at=late)
    header, plaintext = opened(envelope, chain, versions, room_keys, 2)
    assert plaintext == PLAINTEXT and header.sent_at == late
    # What she cannot do: name a later head, or use a later version.
    with raises_exactly(SenderNotMember):
        opened(
            write_envelope(plastic_surgery, room_keys, ALICE, 5, 3), chain, versions, room_keys, 3
        )
    with raises_exactly(InvalidEnvelope, "older than its key version"):
        opened(
            write_envelope(plastic_surgery, room_keys, ALICE, 4, 3), chain, versions, room_keys, 3
        )


def test_signed_by_a_key_the_chain_does_not_hold_for_the_sender_there(
    plastic_surgery, chain, versions, room_keys, surgeon_bob, surgeon_bob_new_phone, head_carol
):
    # Bob's new phone at head 4, where the chain still holds his old key (it gets the new one at 6).
    early = write_envelope(plastic_surgery, room_keys, BOB, 4, 2, signer=surgeon_bob_new_phone)
    with raises_exactly(BadSignature):
        opened(early, chain, versions, room_keys, 2)
    # His old phone at head 6, after the replacement.
    late = write_envelope(plastic_surgery, room_keys, BOB, 6, 4, signer=surgeon_bob)
    with raises_exactly(BadSignature):
        opened(late, chain, versions, room_keys, 4)
    # Carol's key, in Bob's name.
    with raises_exactly(BadSignature):
        opened(
            write_envelope(plastic_surgery, room_keys, BOB, 6, 4, signer=head_carol),
            chain,
            versions,
            room_keys,
            4,
        )
    # The server's check, with the key directory's current key, passes the first one:
    # only the chain tells.
    verify_envelope(early, sender_key=surgeon_bob_new_phone.public)


def test_a_head_beyond_the_readers_chain_is_withheld(
    plastic_surgery, versions, room_keys, envelope
):
    for served in range(6):
        with raises_exactly(ChainWithheld):
            opened(envelope, plastic_surgery.replay(served), versions, room_keys, 4)
    longer = plastic_surgery.branch()
    longer.add("admit", DAN, "member", by=CAROL)
    beyond = write_envelope(longer, room_keys, CAROL, 7, 4)
    with raises_exactly(ChainWithheld):
        opened(beyond, plastic_surgery.replay(), versions, room_keys, 4)
    assert opened(beyond, longer.replay(), versions, room_keys, 4)[1] == PLAINTEXT


def test_a_forked_head_is_refused(plastic_surgery, chain, versions, room_keys):
    forked = plastic_surgery.branch(3)
    forked.add("admit", DAN, "member", by=CAROL)
    envelope = write_envelope(forked, room_keys, CAROL, 4, 1)
    with raises_exactly(ChainFork):
        opened(envelope, chain, versions, room_keys, 1)
    assert opened(envelope, forked.replay(), versions, room_keys, 1)[1] == PLAINTEXT


def test_a_key_version_newer_than_the_senders_head(plastic_surgery, chain, versions, room_keys):
    # Version 3 was made at statement 5; Bob names statement 4.
    envelope = write_envelope(plastic_surgery, room_keys, BOB, 4, 3)
    with raises_exactly(InvalidEnvelope, "older than its key version"):
        opened(envelope, chain, versions, room_keys, 3)


@pytest.mark.parametrize(
    "sender, seq, version, excluded_at",
    [
        (BOB, 5, 2, 5),  # Bob removed Alice, then wrote under a version she holds
        (CAROL, 5, 1, 5),
        (BOB, 6, 3, 6),  # after his own key's replacement
        (CAROL, 6, 2, 6),
    ],
)
def test_a_version_made_before_an_exclusion_the_sender_knew_of(
    plastic_surgery, chain, versions, room_keys, sender, seq, version, excluded_at
):
    envelope = write_envelope(plastic_surgery, room_keys, sender, seq, version)
    with raises_exactly(StaleKeyVersion, f"key replacement of statement {excluded_at}"):
        opened(envelope, chain, versions, room_keys, version)


def test_the_envelopes_commitment_must_be_the_records(plastic_surgery, chain, versions, room_keys):
    # Bob writes under another key that he calls version 4.
    other = RoomKey.generate(department=12, version=4)
    envelope = write_envelope(plastic_surgery, room_keys, BOB, 6, 4, room_key=other)
    with raises_exactly(KeyCommitmentMismatch, "another key than its key version"):
        open_envelope(envelope, chain=chain, record=versions[4].record, room_key=other)
    # And a good envelope with a room key that is not the record's.
    good = write_envelope(plastic_surgery, room_keys, BOB, 6, 4)
    with raises_exactly(KeyCommitmentMismatch):
        open_envelope(good, chain=chain, record=versions[4].record, room_key=other)


def test_the_record_must_be_of_the_envelopes_version(plastic_surgery, chain, versions, room_keys):
    envelope = write_envelope(plastic_surgery, room_keys, BOB, 6, 4)
    with raises_exactly(InvalidEnvelope, "another department, thread or version"):
        open_envelope(envelope, chain=chain, record=versions[3].record, room_key=room_keys[4])
    # And the room key of its version.
    with raises_exactly(DecryptionFailed):
        open_envelope(envelope, chain=chain, record=versions[4].record, room_key=room_keys[3])


def test_another_departments_envelope(plastic_surgery, chain, versions, room_keys):
    cardiology_key = RoomKey.generate(department=CARDIOLOGY, version=4)
    envelope = write_envelope(plastic_surgery, room_keys, BOB, 6, 4, room_key=cardiology_key)
    with raises_exactly(InvalidEnvelope, "another department than the chain"):
        open_envelope(envelope, chain=chain, record=versions[4].record, room_key=cardiology_key)
    with raises_exactly(InvalidEnvelope, "another department than the chain"):
        verify_envelope_in_chain(envelope, chain)


def test_an_envelope_edited_and_resigned_by_its_sender_does_not_open(
    plastic_surgery, chain, versions, room_keys, bob_now
):
    envelope = write_envelope(plastic_surgery, room_keys, BOB, 6, 4)
    for field, value in (("thread", 999), ("client_msg_id", "msg-0002-abcdef")):
        moved = resign(with_header(envelope, **{field: value}), bob_now)
        with raises_exactly(DecryptionFailed):
            opened(moved, chain, versions, room_keys, 4)
    edited = resign(with_header(envelope, key_commitment=b64encode(bytes(32))), bob_now)
    with raises_exactly(KeyCommitmentMismatch):
        opened(edited, chain, versions, room_keys, 4)


def test_check_key_version_of(plastic_surgery, chain, versions, room_keys):
    parsed = parse_envelope(write_envelope(plastic_surgery, room_keys, BOB, 5, 3))
    check_key_version_of(parsed, versions[3].record, chain)
    with raises_exactly(InvalidEnvelope, "another department, thread or version"):
        check_key_version_of(parsed, versions[2].record, chain)
    with raises_exactly(InvalidEnvelope, "another department, thread or version"):
        check_key_version_of(parsed, versions[4].record, chain)


def test_a_reader_with_an_empty_chain(versions, room_keys, envelope, new_chain):
    """A new device served no statements at all: every head is beyond its chain."""
    chain = new_chain().replay()
    with raises_exactly(ChainWithheld):
        opened(envelope, chain, versions, room_keys, 4)
