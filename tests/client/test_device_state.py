"""The client's state on its own, no server: the key ring, the pins, what the device remembers.

The pins and the trust store are the client's first defence against a server
that lies (docs/crypto.md §9, R0, R1, R4, R6): without pins it refuses to
start; what it verified survives a restart and is shared by a user's
processes on one device.
"""

import json
import os
import stat

import pytest

from client.errors import RoundsClientError
from client.keys import KeyRing
from client.pins import normalise_fingerprint, resolve_pins
from client.sdk import RoundsClient
from client.trust import TrustStore, envelope_hash
from core.crypto import EMPTY_HEAD, ChainHead, IdentityKeyPair, RoomKey

ADMIN = IdentityKeyPair.generate().fingerprint
COMPLIANCE = IdentityKeyPair.generate().fingerprint
SERVER = "https://rounds.chu.example"


def grouped(fingerprint: str) -> str:
    return " ".join(fingerprint[i : i + 4] for i in range(0, 64, 4)).upper()


# --- the key ring ----------------------------------------------------------------------------


def test_the_first_key_of_a_version_wins():
    ring = KeyRing()
    key = RoomKey.generate(department=3, version=1)
    assert ring.add_room_key(key)
    assert ring.add_room_key(RoomKey(bytes(key), department=3, version=1))
    assert not ring.add_room_key(RoomKey.generate(department=3, version=1))
    assert ring.room_key(3, 1) == key
    assert ring.versions(3) == []  # no verified record yet: not a usable version
    assert ring.current_key(3) is None
    ring.current[3] = 1
    assert ring.current_key(3) == key
    ring.forget_current(3)
    assert ring.current_key(3) is None


# --- pins ------------------------------------------------------------------------------------


def test_pins_come_from_arguments_then_environment_then_a_file(tmp_path):
    assert resolve_pins(admin=grouped(ADMIN), compliance=COMPLIANCE, environ={}).admin == ADMIN
    env = {"ROUNDS_ADMIN_FINGERPRINT": ADMIN, "ROUNDS_COMPLIANCE_FINGERPRINT": COMPLIANCE}
    assert resolve_pins(environ=env).compliance == COMPLIANCE
    path = tmp_path / "institution.json"
    path.write_text(json.dumps({"admin": ADMIN, "compliance": COMPLIANCE}))
    assert resolve_pins(pins_file=path, environ={}) == resolve_pins(
        environ={"ROUNDS_PINS_FILE": str(path)}
    )
    # An argument wins over the file.
    other = IdentityKeyPair.generate().fingerprint
    assert resolve_pins(admin=other, pins_file=path, environ={}).admin == other


@pytest.mark.parametrize(
    ("arguments", "missing"),
    [
        ({}, ["admin", "compliance"]),
        ({"admin": ADMIN}, ["compliance"]),
        ({"compliance": COMPLIANCE}, ["admin"]),
    ],
)
def test_without_both_pins_nothing_starts(arguments, missing):
    with pytest.raises(RoundsClientError) as refused:
        resolve_pins(**arguments, environ={})
    assert refused.value.code == "pins_required"
    assert refused.value.data == {"missing": missing}


def test_the_sdk_refuses_to_start_without_pins(monkeypatch):
    for name in ("ROUNDS_ADMIN_FINGERPRINT", "ROUNDS_COMPLIANCE_FINGERPRINT", "ROUNDS_PINS_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RoundsClientError) as refused:
        RoundsClient(SERVER)
    assert refused.value.code == "pins_required"
    with pytest.raises(RoundsClientError) as refused:
        RoundsClient(SERVER, pinned_admin_fingerprint=ADMIN)
    assert refused.value.code == "pins_required"


@pytest.mark.parametrize("bad", ["abc", "g" * 64, "0" * 63, 42])
def test_a_pin_that_is_not_a_fingerprint_is_refused(bad):
    with pytest.raises(RoundsClientError) as refused:
        resolve_pins(admin=bad, compliance=COMPLIANCE, environ={})
    assert refused.value.code == "pins_required"


@pytest.mark.parametrize(
    "content",
    ["not json", "[1, 2]", json.dumps({"admin": ADMIN})],
    ids=["not-json", "not-an-object", "no-compliance-pin"],
)
def test_an_unusable_pins_file_is_refused(tmp_path, content):
    path = tmp_path / "pins.json"
    path.write_text(content)
    with pytest.raises(RoundsClientError) as refused:
        resolve_pins(pins_file=path, environ={})
    assert refused.value.code == "pins_required"
    with pytest.raises(RoundsClientError):
        resolve_pins(pins_file=tmp_path / "missing.json", environ={})


def test_fingerprints_are_read_as_people_write_them():
    assert normalise_fingerprint(grouped(ADMIN)) == ADMIN
    with pytest.raises(ValueError):
        normalise_fingerprint("abc")


# --- the trust store --------------------------------------------------------------------------


def test_heads_only_move_forward_and_survive_a_restart(tmp_path):
    store = TrustStore(tmp_path, SERVER, 7)
    assert store.head(12) is None
    first, later = ChainHead(3, "ab" * 32), ChainHead(5, "cd" * 32)
    store.keep_head(12, first)
    store.keep_head(12, later)
    store.keep_head(12, first)  # an older head never replaces a newer one
    store.keep_head(12, EMPTY_HEAD)
    store.close()
    again = TrustStore(tmp_path, SERVER, 7)
    assert again.head(12) == later
    assert again.head(13) is None
    # Another user, or another server, on the same device starts from nothing.
    assert TrustStore(tmp_path, SERVER, 8).head(12) is None
    assert TrustStore(tmp_path, "https://other.example", 7).head(12) is None


def test_the_highest_version_is_remembered(tmp_path):
    store = TrustStore(tmp_path, SERVER, 7)
    assert store.highest_version(12) == 0
    for version in (2, 5, 3):
        store.keep_version(12, version)
    assert TrustStore(tmp_path, SERVER, 7).highest_version(12) == 5


def test_an_envelope_is_remembered_with_the_first_message_it_came_as(tmp_path):
    store = TrustStore(tmp_path, SERVER, 7)
    digest = envelope_hash({"header": {"v": 2}, "ciphertext": "AAAA"})
    assert store.seen(3, "msg-0001") is None
    assert store.remember(3, "msg-0001", digest, None) == (digest, None)
    # The message id, once known, is kept; a second one does not replace it.
    assert store.remember(3, "msg-0001", digest, 41).message_id == 41
    assert store.remember(3, "msg-0001", digest, 42).message_id == 41
    # Another envelope under the same id does not replace the first either.
    assert store.remember(3, "msg-0001", "ff" * 32, 43) == (digest, 41)
    assert TrustStore(tmp_path, SERVER, 7).seen(3, "msg-0001") == (digest, 41)


def test_the_state_file_is_private(tmp_path):
    store = TrustStore(tmp_path / "state", SERVER, 7)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700


def test_envelope_hash_ignores_key_order():
    assert envelope_hash({"a": 1, "b": [2, "é"]}) == envelope_hash({"b": [2, "é"], "a": 1})


def test_the_command_line_refuses_to_start_without_pins(monkeypatch, capsys):
    from client.cli import main

    for name in ("ROUNDS_ADMIN_FINGERPRINT", "ROUNDS_COMPLIANCE_FINGERPRINT", "ROUNDS_PINS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROUNDS_PASSWORD", "unused: nothing is sent")
    assert main(["--user", "surgeon_bob", "library", "--patient-ipp", "00800100"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("rounds: error: pins_required:")
    assert "Traceback" not in error
