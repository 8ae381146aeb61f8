from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.checkpoints import CheckpointError, create_key, write_checkpoint
from audit.sinks import SinkError, configured_sink


class Command(BaseCommand):
    help = (
        "Sign the audit chain's head with the checkpoint key and write it to the sink "
        "(ROUNDS_AUDIT_CHECKPOINT_SINK); --new-key creates the key first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--new-key",
            action="store_true",
            help="Create the checkpoint key at ROUNDS_AUDIT_CHECKPOINT_KEY (never replaces one) "
            "and print its public half, for the DPO to record.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = settings.ROUNDS_AUDIT_CHECKPOINT_KEY
        try:
            if options["new_key"]:
                key = create_key(path)
                self.stdout.write(
                    f"checkpoint key written to {path}; public key {bytes(key.verify_key).hex()}"
                )
                return
            sink = configured_sink()
            checkpoint, name = write_checkpoint(sink)
        except (CheckpointError, SinkError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"checkpoint {name} written to {sink.describe()}: seal {checkpoint.seq} "
            f"hash {checkpoint.hash}, {checkpoint.count} entries"
        )
