"""`manage.py adt_send FILE`: send a file's ADT messages to a listener over MLLP.

What a patient administration system does, for trying the listener (the demo's
patients, docs/interop.md) and for the benchmark; prints each acknowledgement.
"""

import asyncio
from pathlib import Path
from typing import Any

import hl7.mllp
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from interop.files import messages_in_file


class Command(BaseCommand):
    help = "Send the HL7 v2 messages of a file over MLLP and print each ACK."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--host", default=settings.ROUNDS_ADT_HOST)
        parser.add_argument("--port", type=int, default=settings.ROUNDS_ADT_PORT)

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self.send(options["file"], options["host"], options["port"]))

    async def send(self, path: Path, host: str, port: int) -> None:
        reader, writer = await hl7.mllp.open_hl7_connection(host, port)
        try:
            for raw in messages_in_file(path):
                writer.writeblock(raw)
                await writer.drain()
                ack = (await reader.readblock()).decode("ascii", "replace").split("\r")
                msa = next((s for s in ack if s.startswith("MSA|")), "MSA|?")
                self.stdout.write(msa)
        finally:
            writer.close()
