"""Seed a demo hospital when the database is empty, and print its logins.

By default the demo is ready to use at once, for the demo only: every
clinician's keys are published with a backup under a printed recovery code,
each head is appointed with the demo admin key, every member's admission is
signed and each department has a room key (rooms/demo.py). `--no-user-keys`
leaves that to the users, as in a real hospital: keys made in the browsers,
the administrator appointing each head, heads signing their colleagues.
"""

import json
import os
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypedDict

import nacl.signing
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from accounts.keys import check_set_institution_key
from accounts.models import User
from audit.checkpoints import create_key, load_key
from core.crypto import IdentityKeyPair
from patients.models import Admission, LocationMapping, Patient
from rooms.actions import do_admit_member, do_create_department
from rooms.demo import ROSTER_DAYS, DemoDepartment, DemoRole, seed_demo_keys, seed_demo_roster
from rooms.models import Department


class Staff(TypedDict):
    head: tuple[str, str]  # username, display name
    members: list[tuple[str, str]]


DEMO_PASSWORD = os.environ.get("ROUNDS_DEMO_PASSWORD", "rounds-demo-2026")

DEPARTMENTS: dict[str, Staff] = {
    "Plastic surgery": {
        "head": ("head_carol", "Dr Carol Lambert"),
        "members": [
            ("surgeon_bob", "Dr Bob Martin"),
            ("nurse_alice", "Alice Durand, RN"),
            ("intern_erin", "Dr Erin Petit"),
            ("nurse_frank", "Frank Moreau, RN"),
        ],
    },
    "Vascular surgery": {
        "head": ("head_grace", "Dr Grace Girard"),
        "members": [
            ("surgeon_henri", "Dr Henri Roux"),
            ("nurse_ines", "Ines Faure, RN"),
            ("intern_jules", "Dr Jules Blanc"),
            ("nurse_karim", "Karim Benali, RN"),
        ],
    },
    # Asks the surgical departments for consults (docs/advice.md, "Consults").
    "Emergency department": {
        "head": ("head_marc", "Dr Marc Dubois"),
        "members": [
            ("er_doctor_lea", "Dr Léa Simon"),
            ("nurse_olivier", "Olivier Caron, RN"),
            ("er_doctor_paul", "Dr Paul Leroy"),
            ("nurse_sarah", "Sarah Noël, RN"),
        ],
    },
}
# Each department's on-call roles: (name, taken in turn by its nurses or by its doctors,
# nights only). The roster covers the next ROSTER_DAYS days from the seed (docs/oncall.md).
ONCALL: dict[str, list[tuple[str, str, bool]]] = {
    "Plastic surgery": [
        ("On-call plastic surgeon", "doctors", False),
        ("Night nurse", "nurses", True),
    ],
    "Vascular surgery": [("On-call vascular surgeon", "doctors", False)],
    "Emergency department": [("Emergency physician", "doctors", False)],
}
COMPLIANCE = ("compliance_dan", "Dan Mercier (DPO)")
# A second officer, to try four-eyes approval (docs/compliance.md).
COMPLIANCE_SECOND = ("compliance_eve", "Eve Roussel (compliance)")
ADMIN = ("admin", "Rounds administrator")

FAMILY = [
    "Lefèvre",
    "Garnier",
    "Chevalier",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Lemoine",
    "Mathieu",
    "Clément",
    "Gauthier",
    "Perrin",
    "Robin",
    "Masson",
    "Sanchez",
    "Henry",
    "Nicolas",
    "Dumont",
    "Brun",
    "Barbier",
    "Aubert",
    "Renaud",
]
GIVEN_F = ["Camille", "Louise", "Jeanne", "Chloé", "Manon", "Léa", "Inès", "Élise"]
GIVEN_M = ["Hugo", "Louis", "Gabriel", "Arthur", "Jules", "Lucas", "Paul", "Émile"]
WARDS = ["Plastic surgery — 4th floor", "Vascular surgery — 2nd floor", "Burns unit", "Day surgery"]
# The demo's patient administration locations (PV1-3) and their departments: the table
# HL7 ADT stays are placed with (docs/interop.md; interop/examples/demo-adt.hl7 uses them).
DEMO_LOCATIONS = {
    "CHIR-PLAST": "Plastic surgery",
    "BRULES": "Plastic surgery",
    "CHIR-VASC": "Vascular surgery",
    "URG": "Emergency department",
}


class Command(BaseCommand):
    help = "Create a demo hospital (departments, staff, admitted patients) in an empty database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=20)
        parser.add_argument(
            "--no-user-keys",
            dest="user_keys",
            action="store_false",
            help="Leave the clinicians' keys, the heads' appointments and the signed "
            "admissions to the users, as in a real hospital (the live tests start so).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if User.objects.exists():
            self.stdout.write("Database already has users; demo seed skipped.")
            return
        self.fingerprints: dict[str, str] = {}
        self.recovery_codes: dict[str, str] = {}
        self.shifts = 0
        # Before the first audited write: the sealer's first round writes a checkpoint.
        checkpoint_key, created = self.checkpoint_key()
        with transaction.atomic():
            logins = self.seed(options["patients"], user_keys=options["user_keys"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo hospital created. Logins (password for all: {DEMO_PASSWORD}):"
            )
        )
        for username, role in logins:
            code = self.recovery_codes.get(username)
            suffix = f"  recovery code {code}" if code else ""
            self.stdout.write(f"  {username:<16} {role:<28}{suffix}".rstrip())
        if self.recovery_codes:
            self.stdout.write(
                "DEMO ONLY: every clinician's keys are ready (heads appointed, admissions\n"
                "signed, a room key per department). In the browser, sign in and restore\n"
                "the keys with the recovery code above. The codes derive from the demo\n"
                "password: a real hospital never shares them (README, docs/browser.md)."
            )
        self.stdout.write("Institution keys (demo only; private halves under var/demo-keys/):")
        for kind, fingerprint in self.fingerprints.items():
            self.stdout.write(f"  {kind:<16} {fingerprint}")
        if not os.environ.get("ROUNDS_INSTITUTION_FILE"):
            self.stdout.write("Pinned for browsers in var/institution.json (docs/browser.md).")
        self.stdout.write(
            f"On-call roster: {self.shifts} shifts over the next {ROSTER_DAYS} days"
            " (docs/oncall.md)."
        )
        if created:
            self.stdout.write(
                f"Audit checkpoint key (demo) in {settings.ROUNDS_AUDIT_CHECKPOINT_KEY}; "
                f"public key {bytes(checkpoint_key.verify_key).hex()}"
            )
        self.pin_checkpoint_key(checkpoint_key)

    def checkpoint_key(self) -> tuple[nacl.signing.SigningKey, bool]:
        """The demo's audit checkpoint key (and whether it is new), so the sealer signs
        checkpoints from its first round instead of logging every minute that it has
        none (docs/audit.md)."""
        path = settings.ROUNDS_AUDIT_CHECKPOINT_KEY
        if path.exists():
            return load_key(path), False
        return create_key(path), True

    def pin_checkpoint_key(self, key: nacl.signing.SigningKey) -> None:
        """Its public half pinned beside the demo's other keys, so that `rounds
        verify-export` checks an export's audit proof with the demo's pins file."""
        pins = Path(settings.VAR_DIR) / "institution.json"
        if os.environ.get("ROUNDS_INSTITUTION_FILE") or not pins.exists():
            return
        pinned = json.loads(pins.read_text())
        pinned["audit_checkpoint"] = bytes(key.verify_key).hex()
        pins.write_text(json.dumps(pinned, indent=2) + "\n")

    def make_user(self, username: str, display: str, **flags: bool) -> User:
        user = User(username=username, display_name=display, **flags)
        user.set_password(DEMO_PASSWORD)
        user.save()
        return user

    def seed(self, patient_count: int, *, user_keys: bool = True) -> list[tuple[str, str]]:
        admin = self.make_user(*ADMIN, is_staff=True, is_superuser=True)
        logins = [(admin.username, "administrator")]
        departments: list[DemoDepartment] = []
        for name, staff in DEPARTMENTS.items():
            head = self.make_user(*staff["head"])
            department = do_create_department(admin, name, name.lower().replace(" ", "-"), head)
            logins.append((head.username, f"head of {name}"))
            members = []
            for username, display in staff["members"]:
                member = self.make_user(username, display)
                do_admit_member(head, department["id"], member, "member")
                logins.append((username, f"member of {name}"))
                members.append(member)
            departments.append(DemoDepartment(department["id"], head, members))
        for officer in (COMPLIANCE, COMPLIANCE_SECOND):
            compliance = self.make_user(*officer, is_compliance_officer=True)
            logins.append((compliance.username, "compliance officer"))
        institution = self.seed_institution_keys(admin)
        if user_keys:
            # The administrator and the officers keep no keys of their own: they sign and
            # read with the institution's key files (docs/browser.md).
            self.recovery_codes = seed_demo_keys(
                admin,
                institution["admin"],
                institution["compliance"].public,
                departments,
                DEMO_PASSWORD,
            )
        self.seed_roster(departments)
        self.seed_patients(patient_count)
        self.seed_locations()
        return logins

    def seed_locations(self) -> None:
        """The location table, so the demo takes ADT messages (`manage.py adt_listen`)."""
        for location, name in DEMO_LOCATIONS.items():
            department = Department.objects.get(name=name)
            LocationMapping.objects.get_or_create(
                location=location, defaults={"department": department}
            )

    def seed_roster(self, departments: list[DemoDepartment]) -> None:
        """Each department's on-call roles, their shifts taken in turn by its nurses or
        by its doctors (the head among them), from the seed time on."""
        tz = timezone.get_default_timezone()
        now = timezone.now()
        self.shifts = 0
        for name, department in zip(DEPARTMENTS, departments, strict=True):
            everyone = [department.head, *department.members]
            nurses = [user for user in everyone if user.username.startswith("nurse_")]
            doctors = [user for user in everyone if user not in nurses]
            roles = [
                DemoRole(role, nurses if who == "nurses" else doctors, nights_only)
                for role, who, nights_only in ONCALL[name]
            ]
            self.shifts += seed_demo_roster(department.head, department.id, roles, now, tz)

    def seed_institution_keys(self, admin: User) -> dict[str, IdentityKeyPair]:
        """The institution's admin and compliance keys, for the demo only.

        A real institution generates these offline and gives the server only
        the public halves; the demo keeps the private halves under var/ so
        a compliance review can be tried out, and signs each head's appointment
        with the admin key here (rooms/demo.py). Returns the pairs by kind.
        """
        folder = Path(settings.VAR_DIR) / "demo-keys"
        folder.mkdir(parents=True, exist_ok=True)
        pairs = {}
        for kind in ("admin", "compliance"):
            pair = pairs[kind] = IdentityKeyPair.generate()
            path = folder / f"{kind}.key"
            path.write_text(pair.to_bytes().hex())
            path.chmod(0o600)
            check_set_institution_key(admin, kind, pair.public.to_dict())
            self.fingerprints[kind] = pair.fingerprint
        self.write_institution_file()
        return pairs

    def write_institution_file(self) -> None:
        """Pin the demo keys for browsers, as IT pins theirs (docs/browser.md).

        Written beside the demo keys, so a browser on the demo needs no
        fingerprint comparison; a file IT configured (ROUNDS_INSTITUTION_FILE)
        is never overwritten by a demo.
        """
        if os.environ.get("ROUNDS_INSTITUTION_FILE"):
            return
        path = Path(settings.VAR_DIR) / "institution.json"
        path.write_text(json.dumps(self.fingerprints, indent=2) + "\n")

    def seed_patients(self, count: int) -> None:
        rng = random.Random(2026)  # noqa: S311  (demo data, not security)
        now = timezone.now()
        for index in range(count):
            sex = rng.choice("FM")
            patient = Patient.objects.create(
                ipp=f"{800100 + index * 7:08d}",
                family_name=FAMILY[index % len(FAMILY)],
                given_name=rng.choice(GIVEN_F if sex == "F" else GIVEN_M),
                birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 65)),
                sex=sex,
            )
            Admission.objects.create(
                patient=patient,
                ward=WARDS[index % len(WARDS)],
                admitted_at=now - timedelta(days=rng.randrange(0, 12), hours=rng.randrange(0, 24)),
            )
