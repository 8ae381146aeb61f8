from typing import Any

from django.core.management.base import BaseCommand

from media.uploads import expire_orphans


class Command(BaseCommand):
    help = (
        "Remove the blobs and parts of uploads no message referenced within "
        "ROUNDS_UPLOAD_TTL_HOURS, mark them expired and audit each. Run it hourly."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = expire_orphans()
        self.stdout.write(f"expired {count} uploads")
