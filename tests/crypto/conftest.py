"""Personas' identities for the crypto tests (STYLE.md rule 12).

Session-scoped: Hypothesis refuses function-scoped fixtures, and key
generation is the one thing these tests need not repeat.
"""

from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

from chat.crypto import IdentityKeyPair, RoomKey

# No example database, so runs stay independent of each other; Hypothesis's
# other caches go under var/ (ignored by git), not .hypothesis/ in the work
# tree. Example counts are set per test.
settings.register_profile("rounds-crypto", database=None)
settings.load_profile("rounds-crypto")
set_hypothesis_home_dir(Path(__file__).resolve().parents[2] / "var" / "hypothesis")

PLASTIC_SURGERY = 12


@pytest.fixture(scope="session")
def nurse_alice() -> IdentityKeyPair:
    return IdentityKeyPair.generate()


@pytest.fixture(scope="session")
def surgeon_bob() -> IdentityKeyPair:
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
def room_key() -> RoomKey:
    return RoomKey.generate(department=PLASTIC_SURGERY, version=3)
