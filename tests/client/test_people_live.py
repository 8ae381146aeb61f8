"""A head admitting colleagues by name from Python, and members seeing signatures live.

`search_people()` is the browser's colleague search (POST /api/people/search):
a head finds Alice by two word starts and gets the fingerprint to compare
before signing; a member may not search the directory, and one letter is
not a search. When Carol signs a change of membership, the members' clients
hear `membership.signed` and verify the chain again before they next use it.
"""

import contextlib

import pytest

from client.sdk import RoundsClientError
from tests.live.sdk import plastic_surgery_with_keys
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


async def test_a_head_finds_a_colleague_by_name_and_members_hear_her_signature(
    cluster: LiveCluster,
):
    """One ward for both: the module's cluster gives each person their keys once."""
    async with contextlib.AsyncExitStack() as stack:
        plastic, carol, bob, alice = await plastic_surgery_with_keys(cluster, stack)
        found = await carol.search_people("dur ali")
        (person,) = [p for p in found["people"] if p["id"] == alice.me()]
        assert person["display_name"] == "Alice Durand, RN"
        assert person["fingerprint"] == alice.keys.identity.fingerprint
        assert {"id": plastic, "name": "Plastic surgery", "role": "member"} in person["departments"]
        assert found["more"] is False

        with pytest.raises(RoundsClientError) as refused:
            await bob.search_people("dur ali")
        assert refused.value.code == "forbidden"
        with pytest.raises(RoundsClientError) as short:
            await carol.search_people("d")
        assert short.value.code == "invalid_request"

        # Carol signs Alice's appointment as head: Bob hears it, and verifies again.
        before = (await bob.membership.chain(plastic)).head
        await carol.set_role(plastic, alice.me(), "head")
        signed = await bob.next_event(
            "membership.signed", match=lambda frame: frame["kind"] == "role"
        )
        assert (signed["department"], signed["kind"], signed["subject"]) == (
            plastic,
            "role",
            alice.me(),
        )
        assert signed["by"] == {"id": carol.me(), "username": "head_carol"}
        assert signed["seq"] == before.seq + 1
        # The event proves nothing: Bob's client fetched and verified the chain again.
        after = (await bob.membership.chain(plastic)).head
        assert (after.seq, after.hash) == (signed["seq"], signed["hash"])
