"""manage.py load_keywords FILE.json: replace the keyword nomenclature (docs/library.md)."""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import RoundsError
from media.attachments import check_load_keywords


class Command(BaseCommand):
    help = (
        "Load the institution's keyword nomenclature from a JSON list of "
        "{code, label, category}: terms are created or updated, terms absent "
        "from the file are deactivated (never deleted). Audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="JSON file: [{code, label, category}, ...]")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            terms = json.loads(options["file"].read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot read {options['file']}: {error}") from None
        try:
            counts = check_load_keywords(terms)
        except RoundsError as error:
            raise CommandError(error.message) from None
        self.stdout.write(" ".join(f"{name} {count}" for name, count in counts.items()))
