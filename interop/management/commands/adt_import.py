"""`manage.py adt_import FILE…`: ADT messages from files, as if they came over MLLP."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from interop.adt import handle
from interop.files import messages_in_file


class Command(BaseCommand):
    help = "Apply the HL7 v2 ADT messages of files (a first load), in order."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        counts = {"AA": 0, "AE": 0, "AR": 0}
        for path in options["files"]:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            for number, raw in enumerate(messages_in_file(path), start=1):
                answer = handle(raw, f"file:{path.name}"[:64])
                counts[answer.code] += 1
                if answer.code != "AA":
                    self.stderr.write(
                        f"{path.name} message {number}: {answer.code} {answer.reason}"
                    )
        self.stdout.write(
            f"{counts['AA']} applied, {counts['AE']} refused (AE), {counts['AR']} rejected (AR)"
        )
        if counts["AE"] or counts["AR"]:
            raise CommandError("some messages were not applied: see above; fix, then replay")
