"""manage.py purge_expired [--dry-run] [--limit N]: the end of retention, from cron.

Prints one line per thread purged (or, with --dry-run, that would be) and per
thread a hold keeps; exits 0 when another run holds the lock, so an
overlapping cron line is harmless. docs/operations.md has the cron line.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from retention.purge import purge_expired


class Command(BaseCommand):
    help = "Purge the threads of patients past retention, unless a legal hold keeps them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="report, write nothing")
        parser.add_argument("--limit", type=int, default=None, help="purge at most N threads")
        parser.add_argument("--batch", type=int, default=None, help="rows per transaction")

    def handle(
        self, *args: Any, dry_run: bool, limit: int | None, batch: int | None, **options: Any
    ) -> None:
        report = purge_expired(dry_run=dry_run, limit=limit, batch=batch, say=self.stdout.write)
        if report.locked_out:
            return
        verb = "would purge" if dry_run else "purged"
        done = [p for p in report.purged if not p.get("skipped")]
        self.stdout.write(f"{verb} {len(done)} threads; holds kept {len(report.kept)} threads")
