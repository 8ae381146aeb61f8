"""`manage.py adt_replay`: apply again the refused ADT messages, oldest first.

After a fix (a location added to the table, an admission that came late), the
messages refused for it apply; the others stay refused, with their reason.
"""

from typing import Any

from django.core.management.base import BaseCommand

from audit.actions import record
from interop.adt import handle_text
from patients.models import AdtMessage


class Command(BaseCommand):
    help = "Apply again the ADT messages that were refused (AE), in the order they came."

    def handle(self, *args: Any, **options: Any) -> None:
        refused = list(
            AdtMessage.objects.filter(outcome=AdtMessage.Outcome.REFUSED).order_by(
                "received_at", "pk"
            )
        )
        record("adt.replayed", object_type="adt_messages", data={"messages": len(refused)})
        applied = 0
        for message in refused:
            answer = handle_text(message.text, "replay")
            applied += answer.code == "AA"
            if answer.code != "AA":
                self.stdout.write(
                    f"{message.control_id} {message.event}: still refused: {answer.reason}"
                )
        self.stdout.write(f"{applied} of {len(refused)} refused messages applied")
