from django.core.management.base import BaseCommand, CommandError

from audit.actions import seal_all, verify_chain


class Command(BaseCommand):
    help = "Recompute the audit hash chain and name the first entry that does not match."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--seal-first",
            action="store_true",
            help="Seal committed entries that are still waiting before verifying.",
        )

    def handle(self, *args, **options) -> None:
        if options["seal_first"]:
            seal_all(full=True)
        report = verify_chain()
        if not report.ok:
            raise CommandError(
                f"audit chain broken at seal {report.first_bad_seq} "
                f"(audit entry {report.first_bad_event_id}): {report.reason}; "
                f"{report.checked} entries verified before it"
            )
        self.stdout.write(
            f"audit chain ok: {report.checked} entries, head seal {report.head_seq} "
            f"hash {report.head_hash}, {report.unsealed} not yet sealed"
        )
