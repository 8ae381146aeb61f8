"""`manage.py adt_listen`: the ADT listener over MLLP (docs/interop.md)."""

import asyncio
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from interop.mllp import serve


class Command(BaseCommand):
    help = "Listen for HL7 v2 ADT messages over MLLP and acknowledge each one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.ROUNDS_ADT_HOST)
        parser.add_argument("--port", type=int, default=settings.ROUNDS_ADT_PORT)

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self.listen(options["host"], options["port"]))

    async def listen(self, host: str, port: int) -> None:
        server = await serve(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        bound = server.sockets[0].getsockname()
        self.stdout.write(f"ADT listener on {bound[0]}:{bound[1]} (MLLP)", ending="\n")
        self.stdout.flush()
        await stop.wait()
        server.close()
        await server.wait_closed()
