"""`manage.py adt_locations`: the table mapping locations (PV1-3) to departments.

`--set LOCATION DEPARTMENT` maps one (the department by its name), `--list` prints
the table, `--unmapped` the locations refused messages named and no row maps yet.
"""

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.actions import record
from patients.models import AdtMessage, LocationMapping
from rooms.models import Department

_UNMAPPED = re.compile(r"unmapped location '(.+?)'")


class Command(BaseCommand):
    help = "Map patient administration locations (PV1-3) to departments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--set", nargs=2, metavar=("LOCATION", "DEPARTMENT"))
        parser.add_argument("--list", action="store_true")
        parser.add_argument("--unmapped", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["set"]:
            location, name = options["set"]
            department = Department.objects.filter(name=name).first()
            if department is None:
                raise CommandError(f"no department named {name!r}")
            LocationMapping.objects.update_or_create(
                location=location, defaults={"department": department}
            )
            record(
                "adt.location_mapped",
                department_id=department.pk,
                object_type="location",
                object_id=location[:64],
            )
            self.stdout.write(f"{location} → {department.name}")
        if options["list"]:
            for row in LocationMapping.objects.select_related("department").order_by("location"):
                self.stdout.write(f"{row.location}\t{row.department.name}")
        if options["unmapped"]:
            mapped = set(LocationMapping.objects.values_list("location", flat=True))
            refused = AdtMessage.objects.filter(outcome=AdtMessage.Outcome.REFUSED)
            seen = {
                m.group(1)
                for e in refused.values_list("error", flat=True)
                if (m := _UNMAPPED.search(e))
            }
            for location in sorted(seen - mapped):
                self.stdout.write(location)
