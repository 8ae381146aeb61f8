"""End-to-end keys for the live tests, set up over the HTTP API as clients would.

The server verifies every envelope it stores, so the live tests post real
v2 ones, made with bench/keys.py, the one helper the benchmarks use too:
each persona publishes an identity, the department's head is appointed
with the demo institution's admin key (seed_demo leaves it under the
cluster's var dir) and signs the admission of every persona the department
lists, a member publishes a key version made at the chain's head, wrapped
for every member the chain holds and for the demo compliance key, and
messages name that head. A reader opens them as its client would: the
chain replayed from the pinned admin key, the version's record verified
against it, its own wrap, then the sender's signature and the ciphertext
(`core.crypto.open_envelope`).

`LiveKeys` keeps the identities and key versions for the module's cluster
(one identity per persona, as the server allows), so tests sharing a
cluster share them; `ready()` may be called by every test.
"""

import uuid
from collections.abc import Iterator

import pytest

from bench.keys import Encryption, Institution
from client.transport import Connection
from core.crypto import IdentityKeyPair, RoomKey
from tests.live.servers import DEMO_PASSWORD, LiveCluster

PLAINTEXT = b"Flap warm and pink, capillary refill under 2 s."


class LiveKeys:
    def __init__(self, cluster: LiveCluster) -> None:
        self.cluster = cluster
        self.encryption = Encryption(Institution.demo(cluster.root / "var", DEMO_PASSWORD))

    @property
    def room_keys(self) -> dict[int, RoomKey]:
        """Department → the key version made here last."""
        return {d: keys.room_key for d, keys in self.encryption.departments.items()}

    async def publish_identity(self, client: Connection) -> IdentityKeyPair:
        """The client's identity, generated once per persona; publishing it again is a no-op."""
        return await self.encryption.publish_identity(client)

    async def set_compliance_key(self) -> IdentityKeyPair:
        """The institution's compliance key: the demo's, which seed_demo set and pinned."""
        return self.encryption.institution.compliance_key

    async def publish_room_key(self, client: Connection, department: int) -> RoomKey:
        """The department's next key version, made by `client` (whom the chain must hold)."""
        return (await self.encryption.publish_version(client, department)).room_key

    async def ready(self, department: int, *clients: Connection) -> RoomKey:
        """Identities for `clients`, their admissions, and a key version covering them."""
        return (await self.encryption.ready(department, clients)).room_key

    def seal(
        self,
        client: Connection,
        thread: dict,
        plaintext: bytes = PLAINTEXT,
        *,
        client_msg_id: str | None = None,
        room_key: RoomKey | None = None,
    ) -> dict:
        """An envelope from `client` for `thread` (a thread dict, which names its department).

        `room_key` is the department's current one unless given (a made-up
        key for a department the client is not in, say).
        """
        assert client.user is not None
        keys = self.encryption.departments[thread["department"]]
        return keys.seal(
            plaintext,
            sender=client.user["id"],
            thread=thread["id"],
            client_msg_id=client_msg_id or uuid.uuid4().hex,
            room_key=room_key,
        )

    async def post(
        self, client: Connection, thread: dict, plaintext: bytes = PLAINTEXT, **seal: object
    ) -> tuple[dict, dict]:
        """Seal and post; the frame's client_msg_id is the envelope's. Returns (ack, envelope)."""
        envelope = self.seal(client, thread, plaintext, **seal)  # type: ignore[arg-type]
        ack = await client.post(thread["id"], envelope, envelope["header"]["client_msg_id"])
        return ack, envelope

    async def open(self, client: Connection, message: dict) -> bytes:
        """Read a message as `client`'s own device: the verified chain and version, its wrap."""
        return await self.encryption.open(client, message)


@pytest.fixture(scope="module")
def live_keys(cluster: LiveCluster) -> Iterator[LiveKeys]:
    yield LiveKeys(cluster)
