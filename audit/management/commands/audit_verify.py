from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.actions import overdue_unsealed, seal_all, verify_chain


def _ids(text: str) -> set[int]:
    try:
        return {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise CommandError("--accept-quarantined takes entry ids: 17,42") from None


class Command(BaseCommand):
    help = (
        "Recompute the audit hash chain and name the first entry that does not match; fail "
        "also on entries left unsealed past the window and on unreviewed quarantined entries."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--seal-first",
            action="store_true",
            help="Seal committed entries that are still waiting before verifying.",
        )
        parser.add_argument(
            "--accept-quarantined",
            default="",
            metavar="IDS",
            help="Entry ids of quarantined entries already reviewed (comma-separated).",
        )
        parser.add_argument(
            "--checkpoints",
            action="store_true",
            help="Check the chain against every signed checkpoint in the sink.",
        )
        parser.add_argument(
            "--public-key",
            default="",
            metavar="HEX",
            help="The checkpoint key's public half, as recorded by the DPO (default: the "
            "public half of ROUNDS_AUDIT_CHECKPOINT_KEY).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        accepted = _ids(options["accept_quarantined"])
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
        problems = []
        if options["checkpoints"]:
            from audit.checkpoints import check_against_checkpoints

            summary, problem = check_against_checkpoints(report, options["public_key"])
            if problem:
                problems.append(problem)
            else:
                self.stdout.write(summary)
        unreviewed = [(e, s) for e, s in report.quarantined if e not in accepted]
        if unreviewed:
            listed = ", ".join(f"entry {e} (seal {s})" for e, s in unreviewed)
            problems.append(
                f"{len(unreviewed)} quarantined entries could not be encoded and are chained as "
                f"a marker: {listed}; review them, then pass --accept-quarantined"
            )
        overdue, oldest_id, oldest_at = overdue_unsealed()
        if overdue:
            assert oldest_at is not None  # the oldest of a non-empty set
            window = settings.ROUNDS_AUDIT_SEAL_WINDOW_SECONDS
            problems.append(
                f"{overdue} entries unsealed for longer than "
                f"ROUNDS_AUDIT_SEAL_WINDOW_SECONDS ({window:g} s), the oldest "
                f"entry {oldest_id} written at {oldest_at.isoformat()}: the sealer "
                "is failing or stopped (check the log), or run audit_seal --full"
            )
        if problems:
            raise CommandError("; ".join(problems))
