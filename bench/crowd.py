"""A broadcast to a crowd, the in-memory channel layer alone (no sockets, no server):
`python -m bench.crowd [CHANNELS]`.

One group of CHANNELS channels (5,000 by default), one `group_send`, then every
channel's `receive`, timed, with Channels' `InMemoryChannelLayer` and with Rounds'
`InMemoryLayer` (rounds/layers.py), in this process. The first sweeps every channel
for expired messages on each receive, so the time grows with the square of the crowd;
the second sweeps at most once a second. Prints one JSON line.
"""

import asyncio
import json
import sys
import time

from channels.layers import InMemoryChannelLayer

from rounds.layers import InMemoryLayer


async def broadcast_seconds(layer: InMemoryChannelLayer, channels: int) -> float:
    crowd = [await layer.new_channel() for _ in range(channels)]
    for channel in crowd:
        await layer.group_add("department-1", channel)
    started = time.perf_counter()
    await layer.group_send("department-1", {"type": "event.new", "seq": 1})
    received = await asyncio.gather(*(layer.receive(channel) for channel in crowd))
    seconds = time.perf_counter() - started
    assert len(received) == channels
    return seconds


def main(channels: int) -> dict[str, float | int]:
    return {
        "channels": channels,
        "channels_layer_s": round(
            asyncio.run(broadcast_seconds(InMemoryChannelLayer(), channels)), 3
        ),
        "rounds_layer_s": round(asyncio.run(broadcast_seconds(InMemoryLayer(), channels)), 3),
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)), flush=True)
