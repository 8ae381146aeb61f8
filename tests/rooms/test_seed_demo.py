"""The demo seed gives a fresh `make run` what the audit sealer needs to sign checkpoints,
and, for the demo only, every key the ceremony would have made (rooms/demo.py): a
chain that verifies from the pinned admin key as the Python client checks it, a wrap
of the current room key for every member and the compliance key, and a backup that
opens with the recovery code printed next to each login, the one the README lists."""

import io
import itertools
import json
import re

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from accounts.keys import active_identity, check_fetch_backup
from accounts.models import IdentityKey, User
from audit.checkpoints import load_key
from client.membership import verify_listing
from core.crypto import (
    IdentityKeyPair,
    SignedKeyVersion,
    WrapRecord,
    WrongPassphrase,
    b64decode,
    check_current,
    check_key_matches,
    open_backup,
    unwrap_room_key,
    verify_key_version,
)
from core.crypto.backup import GENERATED_LIMITS, backup_limits
from patients.models import Admission
from rooms.chain import list_statements
from rooms.demo import demo_recovery_code
from rooms.keys import department_keys
from rooms.management.commands.seed_demo import DEMO_PASSWORD, DEPARTMENTS
from rooms.models import Department, KeyWrap, Membership

README = django_settings.BASE_DIR / "README.md"
# The password the README's recovery codes are derived from (`make run` without
# ROUNDS_DEMO_PASSWORD).
README_PASSWORD = "rounds-demo-2026"


@pytest.mark.django_db
def test_the_demo_seed_creates_the_checkpoint_key_once(settings, tmp_path):
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "audit-checkpoint.key"
    settings.ROUNDS_AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    out = io.StringIO()
    call_command("seed_demo", "--patients", "3", "--no-user-keys", stdout=out)
    key = load_key(settings.ROUNDS_AUDIT_CHECKPOINT_KEY)
    assert bytes(key.verify_key).hex() in out.getvalue()
    # A checkpoint can be written at once with it.
    written = io.StringIO()
    call_command("audit_checkpoint", stdout=written)
    assert written.getvalue().startswith("checkpoint ")
    # An existing key is never replaced (a second seed on an empty database keeps it).
    before = settings.ROUNDS_AUDIT_CHECKPOINT_KEY.read_bytes()
    from rooms.management.commands.seed_demo import Command

    _, created = Command(stdout=io.StringIO()).checkpoint_key()
    assert not created
    assert settings.ROUNDS_AUDIT_CHECKPOINT_KEY.read_bytes() == before


@pytest.mark.django_db
def test_the_checkpoint_key_exists_before_the_seed_writes_anything(settings, tmp_path, monkeypatch):
    """The sealer's first round writes a checkpoint: were the key made after the seed's
    audited writes, that round would log an error on every fresh deployment."""
    from rooms.management.commands.seed_demo import Command

    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "audit-checkpoint.key"
    settings.ROUNDS_AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    seen_at_start = []
    seed = Command.seed

    def seed_and_look(self, *args, **kwargs):
        seen_at_start.append(settings.ROUNDS_AUDIT_CHECKPOINT_KEY.exists())
        return seed(self, *args, **kwargs)

    monkeypatch.setattr(Command, "seed", seed_and_look)
    call_command("seed_demo", "--patients", "3", "--no-user-keys", stdout=io.StringIO())
    assert seen_at_start == [True]


def seed(settings, tmp_path) -> tuple[dict[str, str], dict[str, str]]:
    """Seed as `make run` does, into `tmp_path`; returns the pins written and the
    recovery codes printed, by username."""
    settings.VAR_DIR = tmp_path
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "audit-checkpoint.key"
    settings.ROUNDS_AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    pins = json.loads((tmp_path / "institution.json").read_text())
    codes = dict(re.findall(r"^  (\S+) .* recovery code (\S+)$", out.getvalue(), re.M))
    return pins, codes


def recovered(user: User, code: str) -> IdentityKeyPair:
    """The user's identity, from the backup the server keeps, opened with `code`."""
    return open_backup(b64decode(check_fetch_backup(user)["blob"]), code)


@pytest.mark.django_db
def test_every_demo_member_reads_the_current_room_key_of_a_verified_chain(
    settings, tmp_path, monkeypatch
):
    # The cheapest Argon2id for the backups: the next test opens them at the real cost.
    monkeypatch.setattr("core.crypto.backup.GENERATED_LIMITS", (1, 8192))
    pins, codes = seed(settings, tmp_path)
    compliance = IdentityKeyPair.from_bytes(
        bytes.fromhex((tmp_path / "demo-keys" / "compliance.key").read_text())
    )
    assert compliance.fingerprint == pins["compliance"]
    departments = Department.objects.order_by("pk")
    assert departments.count() == 3
    for department in departments:
        members = {m.user_id: m for m in Membership.objects.active().filter(department=department)}
        assert len(members) == 5
        head = next(m.user for m in members.values() if m.role == "head")
        # The chain as the Python client checks it, from the pinned admin key only.
        chain = verify_listing(list_statements(head, department.pk), pins["admin"])
        assert {user: m.role for user, m in chain.members.items()} == {
            user: m.role for user, m in members.items()
        }
        compliance_wraps = KeyWrap.objects.filter(
            key_version__department=department, recipient_fingerprint=compliance.fingerprint
        )
        assert compliance_wraps.count() == 1
        for membership in members.values():
            user = membership.user
            identity = recovered(user, codes[user.username])
            assert chain.members[user.pk].fingerprint == identity.fingerprint
            state = department_keys(user, department.pk)
            assert (state["key_version"], state["rotation_required"]) == (1, False)
            [version] = state["versions"]
            record = verify_key_version(SignedKeyVersion.from_dict(version["signed"]), chain)
            check_current(record, chain)
            [raw] = state["my_wraps"]
            wrap = WrapRecord.from_dict(raw)
            assert wrap.wrapper_fp in chain.ever_admitted
            assert wrap.commitment == record.commitment
            key = unwrap_room_key(wrap, recipient=identity, wrapper=chain.key_of(wrap.wrapper_fp))
            check_key_matches(record, key)
        # The compliance key reads the same version, as a review case would.
        wrap = WrapRecord.from_dict(compliance_wraps.get().record)
        check_key_matches(
            record,
            unwrap_room_key(wrap, recipient=compliance, wrapper=chain.key_of(wrap.wrapper_fp)),
        )


@pytest.mark.slow
@pytest.mark.django_db
def test_the_printed_recovery_codes_open_the_backups_and_are_the_readmes(settings, tmp_path):
    _, codes = seed(settings, tmp_path)
    clinicians = [
        username
        for staff in DEPARTMENTS.values()
        for username, _ in [staff["head"], *staff["members"]]
    ]
    assert sorted(codes) == sorted(clinicians), "a code beside every clinician's login"
    readme = README.read_text()
    for username, code in codes.items():
        user = User.objects.get(username=username)
        blob = b64decode(check_fetch_backup(user)["blob"])
        # Sealed as the browser seals a generated code: the moderate Argon2id limits.
        assert backup_limits(blob) == GENERATED_LIMITS
        assert open_backup(blob, code).fingerprint == active_identity(user.pk).fingerprint
        assert code == demo_recovery_code(username, DEMO_PASSWORD)
        listed = f"| `{username}` | `{demo_recovery_code(username, README_PASSWORD)}` |"
        assert listed in readme, f"the README lists {username}'s code"
    with pytest.raises(WrongPassphrase):
        open_backup(b64decode(check_fetch_backup(user)["blob"]), codes["head_carol"])
    # No keys for the administrator and the officers: they use the institution's key files.
    assert not IdentityKey.objects.filter(user__username__in=["admin", "compliance_dan"]).exists()


@pytest.mark.django_db
def test_the_readme_lists_the_demo_patients(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "audit-checkpoint.key"
    call_command("seed_demo", "--no-user-keys", stdout=io.StringIO())
    readme = README.read_text()
    admissions = Admission.objects.select_related("patient").order_by("patient__ipp")
    assert admissions.count() == 20
    for admission in admissions:
        p = admission.patient
        name = f"{p.family_name} {p.given_name}"
        row = f"| {p.ipp} | {name} | {p.birth_date:%d/%m/%Y} | {admission.ward} |"
        assert row in readme, row


@pytest.mark.django_db
def test_the_demo_roster_has_someone_on_duty_now_and_for_14_days(settings, tmp_path):
    """docs/oncall.md, "The demo": the surgeons' roles have no gap from the seed on."""
    from datetime import timedelta

    from django.utils import timezone

    from rooms.models import OnCallRole
    from rooms.oncall import check_roster, on_duty

    settings.VAR_DIR = tmp_path
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "audit-checkpoint.key"
    out = io.StringIO()
    call_command("seed_demo", "--patients", "0", "--no-user-keys", stdout=out)
    assert re.search(r"^On-call roster: \d+ shifts over the next 14 days", out.getvalue(), re.M)
    roles = {role.name: role for role in OnCallRole.objects.select_related("department")}
    assert set(roles) == {
        "On-call plastic surgeon",
        "Night nurse",
        "On-call vascular surgeon",
        "Emergency physician",
    }
    for name in ("On-call plastic surgeon", "On-call vascular surgeon"):
        role = roles[name]
        [holder] = on_duty(role)
        assert not holder.username.startswith("nurse_")
        head = Membership.objects.get(department=role.department, role="head").user
        for hours in (0, 7 * 24, 14 * 24 - 12):  # the last 12 hours before the 14 days
            start = timezone.now() + timedelta(hours=hours)
            roster = check_roster(
                head, role.department_id, start, start + timedelta(hours=12), role.pk
            )
            assert roster["gaps"] == [] and roster["overlaps"] == [], (name, hours)
    nights = check_roster(
        Membership.objects.get(department=roles["Night nurse"].department, role="head").user,
        roles["Night nurse"].department_id,
        role_id=roles["Night nurse"].pk,
    )
    assert {s["user"]["username"] for s in nights["shifts"]} == {"nurse_alice", "nurse_frank"}


def test_demo_handovers_stay_at_8_and_20_across_a_clock_change():
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from rooms.demo import demo_shift_starts

    paris = ZoneInfo("Europe/Paris")
    starts = demo_shift_starts(datetime(2026, 10, 24, 12, 0, tzinfo=UTC), paris, days=3)
    assert starts[0] == datetime(2026, 10, 24, 8, 0, tzinfo=paris)
    assert {s.astimezone(paris).hour for s in starts} == {8, 20}
    # The night of the change back (25 October) lasts 13 hours (same-zone subtraction
    # would count wall-clock hours: compare in UTC).
    utc = [start.astimezone(UTC) for start in starts]
    lengths = {(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(utc)}
    assert lengths == {12.0, 13.0}
    assert starts[-1] >= datetime(2026, 10, 27, 12, 0, tzinfo=UTC)
