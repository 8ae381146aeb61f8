"""End-to-end keys for the live tests, set up over the HTTP API as a client would.

The server verifies every envelope it stores, so the live tests post real
ones: each persona publishes an identity (`PUT /api/keys/identity`), the
`admin` demo user sets the compliance key (`PUT
/api/keys/institution/compliance`), a member publishes a room key version
wrapped for every member the server lists with an identity and for the
compliance key (`POST /api/departments/{id}/keys`), and messages are made
with `chat.crypto.encrypt_message`. A reader opens them as its client would:
its own wrap from `GET /api/departments/{id}/keys`, checked against the
wrapper's published key, then the sender's signature and the ciphertext.

`LiveKeys` keeps the key pairs and room keys for the module's cluster (one
identity per persona, as the server allows), so tests sharing a cluster
share them.
"""

import uuid
from collections.abc import Iterator

import pytest

from chat.crypto import (
    IdentityKeyPair,
    PublicIdentity,
    RoomKey,
    WrapRecord,
    decrypt_message,
    encrypt_message,
    unwrap_room_key,
    wrap_room_key,
)
from client.sdk import RoundsClient
from tests.live.servers import DEMO_PASSWORD, LiveCluster

PLAINTEXT = b"Flap warm and pink, capillary refill under 2 s."


class LiveKeys:
    def __init__(self, cluster: LiveCluster) -> None:
        self.cluster = cluster
        self.pairs: dict[str, IdentityKeyPair] = {}
        self.room_keys: dict[int, RoomKey] = {}
        self.compliance: IdentityKeyPair | None = None

    @staticmethod
    def _username(client: RoundsClient) -> str:
        assert client.user is not None, "log in first"
        return client.user["username"]

    async def publish_identity(self, client: RoundsClient) -> IdentityKeyPair:
        """The client's identity, generated once per persona; publishing it again is a no-op."""
        pair = self.pairs.setdefault(self._username(client), IdentityKeyPair.generate())
        await client.call("PUT", "/api/keys/identity", json={"public": pair.public.to_dict()})
        return pair

    async def set_compliance_key(self) -> IdentityKeyPair:
        """The institution's compliance key, set once by the `admin` demo user."""
        if self.compliance is None:
            pair = IdentityKeyPair.generate()
            async with RoundsClient(self.cluster.servers[0].url) as admin:
                await admin.login("admin", DEMO_PASSWORD)
                await admin.call(
                    "PUT",
                    "/api/keys/institution/compliance",
                    json={"public": pair.public.to_dict()},
                )
            self.compliance = pair
        return self.compliance

    async def publish_room_key(self, client: RoundsClient, department: int) -> RoomKey:
        """The department's next key version, wrapped by `client` for everyone who must read it."""
        wrapper = self.pairs[self._username(client)]
        compliance = await self.set_compliance_key()
        data = await client.call("GET", f"/api/departments/{department}/keys")
        assert data["compliance"]["fingerprint"] == compliance.fingerprint
        recipients = [
            PublicIdentity.from_dict(member["identity"])
            for member in data["members"]
            if member["identity"] is not None
        ]
        recipients.append(compliance.public)
        key = RoomKey.generate(department=department, version=data["key_version"] + 1)
        wraps = [
            wrap_room_key(key, recipient=recipient, wrapper=wrapper).to_dict()
            for recipient in recipients
        ]
        await client.call(
            "POST",
            f"/api/departments/{department}/keys",
            json={"version": key.version, "wraps": wraps},
        )
        self.room_keys[department] = key
        return key

    async def ready(self, department: int, *clients: RoundsClient) -> RoomKey:
        """Identities for `clients`, then (once per module) a room key version by the first."""
        for client in clients:
            await self.publish_identity(client)
        if department not in self.room_keys:
            await self.publish_room_key(clients[0], department)
        return self.room_keys[department]

    def seal(
        self,
        client: RoundsClient,
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
        return encrypt_message(
            plaintext,
            room_key=room_key or self.room_keys[thread["department"]],
            thread=thread["id"],
            sender=client.user["id"],
            client_msg_id=client_msg_id or uuid.uuid4().hex,
            signer=self.pairs[self._username(client)],
        )

    async def post(
        self, client: RoundsClient, thread: dict, plaintext: bytes = PLAINTEXT, **seal: object
    ) -> tuple[dict, dict]:
        """Seal and post; the frame's client_msg_id is the envelope's. Returns (ack, envelope)."""
        envelope = self.seal(client, thread, plaintext, **seal)  # type: ignore[arg-type]
        ack = await client.post(thread["id"], envelope, envelope["header"]["client_msg_id"])
        return ack, envelope

    async def open(self, client: RoundsClient, message: dict) -> bytes:
        """Read a message as `client`'s own device: its wrap, the wrapper's and sender's keys."""
        reader = self.pairs[self._username(client)]
        header = message["envelope"]["header"]
        data = await client.call("GET", f"/api/departments/{header['room']}/keys")
        (record,) = [
            WrapRecord.from_dict(raw)
            for raw in data["my_wraps"]
            if raw["version"] == header["key_version"]
        ]
        wrapper = await self._published(client, fingerprint=record.wrapper_fp, data=data)
        room_key = unwrap_room_key(record, recipient=reader, wrapper=wrapper)
        sender = await client.call("GET", f"/api/keys/identity/{message['sender']['id']}")
        sender_key = PublicIdentity.from_dict(sender["public"])
        assert sender_key.fingerprint == sender["fingerprint"]
        return decrypt_message(message["envelope"], room_key=room_key, sender_key=sender_key)

    @staticmethod
    async def _published(client: RoundsClient, *, fingerprint: str, data: dict) -> PublicIdentity:
        for member in data["members"]:
            if member["fingerprint"] == fingerprint:
                identity = PublicIdentity.from_dict(member["identity"])
                assert identity.fingerprint == fingerprint
                return identity
        raise AssertionError(f"no member has the wrapper's fingerprint {fingerprint[:16]}")


@pytest.fixture(scope="module")
def live_keys(cluster: LiveCluster) -> Iterator[LiveKeys]:
    yield LiveKeys(cluster)
