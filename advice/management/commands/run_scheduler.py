"""`manage.py run_scheduler`: fire the advice timers from a process of its own.

For a deployment that sets ROUNDS_SCHEDULER=off in its servers (docs/advice.md); with
the default ("thread") every server process already runs the same loop. Several may
run at once: each timer still fires once.
"""

from typing import Any

from django.core.management.base import BaseCommand

from advice.scheduler import run_forever


class Command(BaseCommand):
    help = "Fire the advice requests' escalation timers until interrupted."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("advice scheduler running; Ctrl-C stops it")
        try:
            run_forever()
        except KeyboardInterrupt:
            self.stdout.write("advice scheduler stopped")
