"""Join one group; relay every text frame to every member, sender included.

An AsyncWebsocketConsumer sending text, as Rounds' consumer does (it relays
a pre-encoded JSON frame from the layer to each socket). The frame is not
parsed: parsing is part of what Rounds does per message, not of the floor.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

GROUP = "floor"


class BroadcastConsumer(AsyncWebsocketConsumer):
    groups = [GROUP]  # joined before accept, left on disconnect, by Channels itself

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.channel_layer.group_send(GROUP, {"type": "relay", "text": text_data})

    async def relay(self, message: dict) -> None:
        await self.send(text_data=message["text"])
