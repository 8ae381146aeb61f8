"""The client's key ring on its own: no server."""

import pytest

from chat.crypto import IdentityKeyPair, RoomKey, encrypt_message
from client.keys import KeyRing, envelope_hash, normalise_fingerprint


def envelope(text: bytes, client_msg_id: str = "msg-0001-ring") -> dict:
    return encrypt_message(
        text,
        room_key=RoomKey(bytes(32), department=3, version=1),
        thread=9,
        sender=7,
        client_msg_id=client_msg_id,
        signer=IdentityKeyPair.from_bytes(bytes(range(64))),
    )


def test_the_same_envelope_again_is_no_replay_another_under_the_same_id_is():
    ring = KeyRing()
    first = envelope(b"one")
    assert not ring.is_replay(7, "msg-0001-ring", first)
    ring.remember(7, "msg-0001-ring", first)
    assert not ring.is_replay(7, "msg-0001-ring", first)
    other = envelope(b"two")
    assert ring.is_replay(7, "msg-0001-ring", other)
    # The first envelope stays the reference.
    ring.remember(7, "msg-0001-ring", other)
    assert ring.seen[(7, "msg-0001-ring")] == envelope_hash(first)
    assert not ring.is_replay(8, "msg-0001-ring", other)  # another sender's id


def test_the_first_key_of_a_version_wins():
    ring = KeyRing()
    key = RoomKey.generate(department=3, version=1)
    assert ring.add_room_key(key)
    assert ring.add_room_key(RoomKey(bytes(key), department=3, version=1))
    assert not ring.add_room_key(RoomKey.generate(department=3, version=1))
    assert ring.room_key(3, 1) == key
    ring.add_room_key(RoomKey.generate(department=3, version=2))
    ring.add_room_key(RoomKey.generate(department=4, version=1))
    assert ring.versions(3) == [1, 2]
    assert ring.current_key(3) is None
    ring.set_current(3, 2)
    assert ring.current_key(3).version == 2
    ring.forget_current(3)
    assert ring.current_key(3) is None


def test_the_pinned_compliance_fingerprint():
    fingerprint = IdentityKeyPair.generate().fingerprint
    grouped = " ".join(fingerprint[i : i + 4] for i in range(0, 64, 4)).upper()
    assert normalise_fingerprint(grouped) == fingerprint
    ring = KeyRing(pinned_compliance_fingerprint=grouped)
    assert ring.compliance_allowed(fingerprint)
    assert not ring.compliance_allowed("0" * 64)
    assert not ring.compliance_allowed(None)
    assert KeyRing().compliance_allowed(None)
    with pytest.raises(ValueError):
        KeyRing(pinned_compliance_fingerprint="abc")
