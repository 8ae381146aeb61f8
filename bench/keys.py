"""Real keys for the benchmarks: every post is a signed, encrypted v1 envelope.

Each benchmark client publishes an identity; the first one publishes room key
version 1 wrapped for every member with a key and the compliance key, as a
client would. The room key then stays in this process, which plays all the
clients: the server cannot tell, and it checks every signature as usual.
"""

import os

from chat.crypto import IdentityKeyPair, PublicIdentity, RoomKey, encrypt_message, wrap_room_key
from client import RoundsClient


class Keys:
    def __init__(self, room_key: RoomKey, pairs: dict[int, IdentityKeyPair]) -> None:
        self.room_key = room_key
        self.pairs = pairs

    def envelope(self, sender: int, thread: int, client_msg_id: str, size: int = 256) -> dict:
        return encrypt_message(
            os.urandom(size),
            room_key=self.room_key,
            thread=thread,
            sender=sender,
            client_msg_id=client_msg_id,
            signer=self.pairs[sender],
        )


async def enable_encryption(clients: list[RoundsClient], department: int) -> Keys:
    """Publish an identity per client, then room key version 1 from the first client."""
    pairs: dict[int, IdentityKeyPair] = {}
    for client in clients:
        pair = IdentityKeyPair.generate()
        await client.call("PUT", "/api/keys/identity", json={"public": pair.public.to_dict()})
        pairs[client.user["id"]] = pair
    first = clients[0]
    state = await first.call("GET", f"/api/departments/{department}/keys")
    room_key = RoomKey.generate(department=department, version=state["key_version"] + 1)
    recipients = [m["identity"] for m in state["members"] if m["identity"]]
    if state["compliance"]:
        recipients.append(state["compliance"]["public"])
    wraps = [
        wrap_room_key(
            room_key, recipient=PublicIdentity.from_dict(public), wrapper=pairs[first.user["id"]]
        ).to_dict()
        for public in recipients
    ]
    await first.call(
        "POST",
        f"/api/departments/{department}/keys",
        json={"version": room_key.version, "wraps": wraps},
    )
    return Keys(room_key, pairs)
