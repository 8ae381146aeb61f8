"""`manage.py fhir_import FILE…` or `manage.py fhir_import --server URL [--since DATE]`:
FHIR R4 Patients and Encounters applied to patients and stays (docs/interop-fhir.md)."""

import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from interop.fhir_import import Entry, FhirImport, ImportReport, entries_of
from interop.fhir_search import import_from_server


class Command(BaseCommand):
    help = (
        "Apply FHIR R4 Patient and Encounter resources (JSON files, each a resource or a "
        "Bundle; or a FHIR server's search, with ROUNDS_FHIR_TOKEN as its bearer token)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="*", type=Path)
        parser.add_argument("--server", help="the FHIR server's base URL")
        parser.add_argument(
            "--since", help="only resources updated since (YYYY-MM-DD or ISO date-time)"
        )
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["files"]) == bool(options["server"]):
            raise CommandError("give either FILE… or --server URL")
        if options["server"]:
            since = options["since"]
            if since:
                check_since(since)
            report = import_from_server(
                options["server"],
                since=since,
                token=os.environ.get("ROUNDS_FHIR_TOKEN", ""),
                timeout=options["timeout"],
            )
        else:
            if options["since"]:
                raise CommandError("--since goes with --server")
            report = import_files(options["files"])
        for line in report.lines():
            self.stdout.write(line)
        if report.refused:
            raise CommandError(f"{len(report.refused)} refused: see above; fix, then import again")


def import_files(paths: list[Path]) -> ImportReport:
    """Every file read first, so a Bundle's Patients come before any file's Encounters."""
    run = FhirImport()
    entries: list[Entry] = []
    for path in paths:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            document = json.loads(path.read_bytes())
        except ValueError as error:
            run.refuse(path.name, f"not JSON: {error}")
            continue
        entries.extend(entries_of(document, run.report))
    run.do_entries(entries)
    return run.report


def check_since(since: str) -> None:
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            parse(since)
            return
        except ValueError:
            continue
    raise CommandError(f"--since {since!r} is not a date (YYYY-MM-DD) or an ISO date-time")
