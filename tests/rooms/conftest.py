"""The bare hospital brought, step by step, to a department whose membership is signed.

Each fixture goes one step further, through the API as clients do:
`bare` (no identity, no institution key), `keyed` (Plastic surgery's
members have published identities, the compliance key is set), `appointed`
(the admin key has appointed Carol head: chain head 1), `attested` (Carol
has admitted Bob and Alice: head 3), `version_one` (Bob has published room
key version 1 at head 3).
"""

import pytest

from tests.rooms.keyring import MEMBERS, Keyed, set_admin_key, set_compliance
from tests.support import Hospital


@pytest.fixture
def bare(bare_hospital: Hospital) -> Keyed:
    return Keyed(bare_hospital)


@pytest.fixture
def keyed(bare: Keyed) -> Keyed:
    for name in MEMBERS:
        bare.publish(name)
    set_compliance(bare)
    return bare


@pytest.fixture
def appointed(keyed: Keyed) -> Keyed:
    set_admin_key(keyed)
    response = keyed.attest("head_carol", "head", None)
    assert response.status_code == 201, response.content
    return keyed


@pytest.fixture
def attested(appointed: Keyed) -> Keyed:
    for name in ("surgeon_bob", "nurse_alice"):
        response = appointed.attest(name)
        assert response.status_code == 201, response.content
    return appointed


@pytest.fixture
def version_one(attested: Keyed) -> Keyed:
    response = attested.publish_version("surgeon_bob", 1, (*MEMBERS, "compliance"))
    assert response.status_code == 201, response.content
    return attested
