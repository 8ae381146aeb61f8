"""manage.py purge_audit [--dry-run]: the end of the audit trail's own retention, from cron.

Removes the chain's oldest entries (ROUNDS_AUDIT_RETENTION_DAYS), except from the
first day of what an active legal hold keeps or an open case covers, after signing
the prune into the checkpoint sink (retention/audit_prune.py, docs/audit.md). Exits 0
when another purge holds the lock, so an overlapping cron line is harmless.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.checkpoints import CheckpointError
from audit.sinks import SinkError
from retention.audit_prune import AuditRetentionError, purge_audit


class Command(BaseCommand):
    help = "Remove audit entries past their retention, anchored and signed, except under hold."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="report, write nothing")

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        try:
            report = purge_audit(dry_run=dry_run, say=self.stdout.write)
        except (AuditRetentionError, CheckpointError, SinkError) as error:
            raise CommandError(f"nothing removed: {error}") from None
        if report.locked_out:
            return
        assert report.before is not None  # plan() sets it on every run that got the lock
        if report.finished:
            self.stdout.write(f"finished an interrupted prune: {report.finished} entries removed")
        kept = ""
        if report.kept_from is not None:
            kept = f"; kept from {report.kept_from.isoformat()} by {', '.join(report.kept_by)}"
        head = f"retention from {report.before.isoformat()}{kept}"
        if report.upto <= report.previous:
            self.stdout.write(f"nothing to prune ({head}; pruned up to seal {report.previous})")
            return
        verb = "would prune" if dry_run else "pruned"
        signed = f", signed as {report.record}" if report.record else ""
        self.stdout.write(
            f"{verb} seals {report.previous + 1}..{report.upto}: {report.entries} entries "
            f"({head}){signed}"
        )
