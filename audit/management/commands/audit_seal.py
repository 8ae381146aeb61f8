from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.actions import seal_all


class Command(BaseCommand):
    help = "Seal committed audit entries into the hash chain now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--full", action="store_true", help="Look at every unsealed entry.")

    def handle(self, *args: Any, **options: Any) -> None:
        count = seal_all(full=options["full"])
        self.stdout.write(f"sealed {count} audit entries")
