"""ADT messages in a file: a first load of the patients, or a replay (docs/interop.md).

Messages follow each other, each beginning with a line `MSH|`; segments end with a
carriage return or a line feed, and blank lines between messages are ignored.
MLLP's frame bytes (0x0B, 0x1C) are ignored too, so a capture of the wire loads.
"""

import re
from collections.abc import Iterator
from pathlib import Path

_MESSAGE_START = re.compile(rb"(?:^|[\r\n])(?=MSH\|)")


def messages_in(data: bytes) -> Iterator[bytes]:
    """Each message of a file's bytes, its segments separated by carriage returns."""
    data = data.replace(b"\x0b", b"").replace(b"\x1c", b"")
    for chunk in _MESSAGE_START.split(data):
        segments = [line for line in re.split(rb"\r\n|\r|\n", chunk) if line.strip()]
        if segments:
            yield b"\r".join(segments)


def messages_in_file(path: Path) -> Iterator[bytes]:
    yield from messages_in(path.read_bytes())
