from django.core.management.base import BaseCommand

from audit.actions import seal_all


class Command(BaseCommand):
    help = "Seal committed audit entries into the hash chain now."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--full", action="store_true", help="Look at every unsealed entry.")

    def handle(self, *args, **options) -> None:
        count = seal_all(full=options["full"])
        self.stdout.write(f"sealed {count} audit entries")
