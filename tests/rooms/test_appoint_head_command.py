"""`manage.py appoint_head`: the administrator signs a head's appointment with the admin key."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.keys import check_publish_identity, check_set_institution_key
from audit.models import AuditEvent
from core.crypto import IdentityKeyPair, SignedStatement, verify_statement
from rooms.models import MembershipStatement
from tests.support import Hospital

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_key(bare_hospital: Hospital, tmp_path):
    pair = IdentityKeyPair.generate()
    check_set_institution_key(bare_hospital.admin_zoe, "admin", pair.public.to_dict())
    path = tmp_path / "admin.key"
    path.write_text(pair.to_bytes().hex())
    return pair, path


def appoint(h: Hospital, path, *extra: str) -> str:
    out = StringIO()
    call_command(
        "appoint_head", h.plastic.slug, "head_carol", "--key-file", str(path), *extra, stdout=out
    )
    return out.getvalue()


def test_the_head_is_appointed_under_the_admin_key(bare_hospital: Hospital, admin_key):
    h = bare_hospital
    pair, path = admin_key
    carol = IdentityKeyPair.generate()
    check_publish_identity(h.head_carol, carol.public.to_dict())
    output = appoint(h, path, "--fingerprint", carol.public.fingerprint_grouped)
    assert "head_carol appointed head of Plastic surgery" in output
    stored = MembershipStatement.objects.get()
    assert stored.signer_id is None and stored.subject_id == h.head_carol.pk
    statement = verify_statement(SignedStatement.from_dict(stored.signed), pair.public)
    assert (statement.role, statement.subject_fingerprint) == ("head", carol.fingerprint)
    entry = AuditEvent.objects.get(action="key.statement_signed")
    assert entry.actor_id == h.admin_zoe.pk and entry.data["signed_by"] == "admin_key"


def test_nothing_is_signed_without_a_published_key_or_for_another_fingerprint(
    bare_hospital: Hospital, admin_key
):
    h = bare_hospital
    _, path = admin_key
    with pytest.raises(CommandError, match="has not published"):
        appoint(h, path)
    check_publish_identity(h.head_carol, IdentityKeyPair.generate().public.to_dict())
    with pytest.raises(CommandError, match="not the fingerprint given"):
        appoint(h, path, "--fingerprint", "ab" * 32)
    assert not MembershipStatement.objects.exists()


def test_a_wrong_key_file_is_refused_and_a_second_run_changes_nothing(
    bare_hospital: Hospital, admin_key, tmp_path
):
    h = bare_hospital
    _, path = admin_key
    check_publish_identity(h.head_carol, IdentityKeyPair.generate().public.to_dict())
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not hex")
    with pytest.raises(CommandError, match="not a readable admin key"):
        appoint(h, garbage)
    other = tmp_path / "other.key"
    other.write_text(IdentityKeyPair.generate().to_bytes().hex())
    with pytest.raises(CommandError, match="bad_signature"):
        appoint(h, other)
    appoint(h, path)
    appoint(h, path)  # run twice: the appointment is kept once
    assert MembershipStatement.objects.count() == 1
