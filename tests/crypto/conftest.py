"""Personas' identities, and department 12's chain and key versions, for the crypto tests.

Session-scoped: Hypothesis refuses function-scoped fixtures, and key
generation is the one thing these tests need not repeat. Nothing here may
be changed by a test: `plastic_surgery.branch()` gives a copy to write on.
"""

from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from core.crypto import IdentityKeyPair, RoomKey, SignedKeyVersion, make_key_version
from tests.crypto.support import (
    ADMIN,
    ALICE,
    BOB,
    CAROL,
    DAN,
    PLASTIC_SURGERY,
    VERSIONS_MADE_AT,
    ChainWriter,
    write_envelope,
)

# No example database, so runs stay independent of each other; Hypothesis's
# other caches go under var/ (ignored by git), not .hypothesis/ in the work
# tree. Example counts are set per test.
settings.register_profile("rounds-crypto", database=None)
settings.load_profile("rounds-crypto")
set_hypothesis_home_dir(Path(__file__).resolve().parents[2] / "var" / "hypothesis")


@pytest.fixture(scope="session")
def nurse_alice() -> IdentityKeyPair:
    return IdentityKeyPair.generate()


@pytest.fixture(scope="session")
def surgeon_bob() -> IdentityKeyPair:
    return IdentityKeyPair.generate()


@pytest.fixture(scope="session")
def surgeon_bob_new_phone() -> IdentityKeyPair:
    """Bob's key after he lost his phone: a head signs it in with a `replace`."""
    return IdentityKeyPair.generate()


@pytest.fixture(scope="session")
def head_carol() -> IdentityKeyPair:
    return IdentityKeyPair.generate()


@pytest.fixture(scope="session")
def compliance_dan() -> IdentityKeyPair:
    return IdentityKeyPair.generate()


@pytest.fixture(scope="session")
def institution_admin() -> IdentityKeyPair:
    return IdentityKeyPair.generate()


@pytest.fixture(scope="session")
def people(head_carol, nurse_alice, surgeon_bob, compliance_dan) -> dict[int, IdentityKeyPair]:
    """User id -> the key each persona starts with."""
    return {CAROL: head_carol, ALICE: nurse_alice, BOB: surgeon_bob, DAN: compliance_dan}


@pytest.fixture(scope="session")
def new_chain(institution_admin, people):
    """A factory: an empty chain of a department (12 unless told), for the personas."""

    def new_chain(department: int = PLASTIC_SURGERY) -> ChainWriter:
        return ChainWriter(institution_admin, people, department=department)

    return new_chain


@pytest.fixture(scope="session")
def plastic_surgery(new_chain, surgeon_bob_new_phone) -> ChainWriter:
    """Department 12's chain, six statements:

    1. the admin key appoints head_carol (3);
    2. Carol admits nurse_alice (7);
    3. Carol admits surgeon_bob (8);
    4. Carol makes Bob a head;
    5. Bob removes Alice;
    6. Carol replaces Bob's key with surgeon_bob_new_phone.
    """
    writer = new_chain()
    writer.add("admit", CAROL, "head", by=ADMIN)
    writer.add("admit", ALICE, "member", by=CAROL)
    writer.add("admit", BOB, "member", by=CAROL)
    writer.add("role", BOB, "head", by=CAROL)
    writer.add("remove", ALICE, "member", by=BOB)
    writer.add("replace", BOB, "head", by=CAROL, key=surgeon_bob_new_phone)
    return writer


@pytest.fixture(scope="session")
def room_keys() -> dict[int, RoomKey]:
    """Department 12's room key versions 1 to 4."""
    return {v: RoomKey.generate(department=PLASTIC_SURGERY, version=v) for v in range(1, 5)}


@pytest.fixture(scope="session")
def versions(plastic_surgery, room_keys) -> dict[int, SignedKeyVersion]:
    """The signed record of each version, made as VERSIONS_MADE_AT says:

    1 by Carol at statement 2, 2 by Bob at 4 (so before Alice's removal),
    3 by Carol at 5 (after it), 4 by Bob with his new key at 6.
    """
    return {
        version: make_key_version(
            room_keys[version],
            head=plastic_surgery.head_at(seq),
            creator_user=creator,
            creator=plastic_surgery.key_at(creator, seq),
        )
        for version, (seq, creator) in VERSIONS_MADE_AT.items()
    }


@pytest.fixture(scope="session")
def room_key(room_keys) -> RoomKey:
    """Version 3 of department 12's key, for the tests that need one key only."""
    return room_keys[3]


@pytest.fixture(scope="session")
def bob_now(surgeon_bob_new_phone) -> IdentityKeyPair:
    """The key surgeon_bob signs with since statement 6, as the server's key directory has it."""
    return surgeon_bob_new_phone


@pytest.fixture(scope="session")
def envelope(plastic_surgery, room_keys) -> dict:
    """Bob writing now: at statement 6, under version 4, with his new phone's key."""
    return write_envelope(plastic_surgery, room_keys, BOB, 6, 4)
