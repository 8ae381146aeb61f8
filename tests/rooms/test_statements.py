"""What the server checks of a statement before it consults the chain.

The caller is a head of the department (or an administrator, for the
admin key's statements), the statement parses, names the caller and their
key, is signed by it, and describes the membership as the tables have it:
the subject's published key, their active membership and role. Each
refusal has its code, and leaves everything as it was.
"""

import pytest

from accounts.models import IdentityKey
from core.crypto import CONTEXT_STATEMENT, IdentityKeyPair, SignedStatement, sign_statement
from tests.rooms.keyring import ADMIN, Keyed, set_admin_key, state
from tests.support import assert_refused
from tests.support.tamper import flip_b64

pytestmark = pytest.mark.django_db


# --- Refused before the chain is consulted -----------------------------------------------------


def test_a_member_may_not_sign_statements(appointed: Keyed):
    k = appointed
    st = k.statement(
        subject_user=k.h.nurse_alice.pk,
        subject_fingerprint=k.pairs["nurse_alice"].fingerprint,
        signer_user=k.h.surgeon_bob.pk,
        signer_fingerprint=k.pairs["surgeon_bob"].fingerprint,
    )
    before = state(k.h)
    assert_refused(
        k.post_statement("surgeon_bob", k.signed_by(st, "surgeon_bob")), 403, "forbidden"
    )
    assert state(k.h) == before


def _signed_with_alices_key(k: Keyed) -> dict:
    """Names carol as signer, but alice signed it."""
    st = k.statement()
    signature = k.pairs["nurse_alice"].sign(CONTEXT_STATEMENT, st.signed_bytes())
    return SignedStatement(st, signature).to_dict()


def _tampered(k: Keyed) -> dict:
    signed = k.signed_by(k.statement())
    return {**signed, "statement": {**signed["statement"], "role": "head"}}


BAD_STATEMENT_SIGNATURES = {
    "signed with another key": _signed_with_alices_key,
    "altered after signing": _tampered,
    "signature flipped": lambda k: {
        **(s := k.signed_by(k.statement())),
        "sig": flip_b64(s["sig"]),
    },
}


@pytest.mark.parametrize(
    "make", BAD_STATEMENT_SIGNATURES.values(), ids=BAD_STATEMENT_SIGNATURES.keys()
)
def test_a_statement_not_signed_by_the_callers_key_is_refused(appointed: Keyed, make):
    signed = make(appointed)
    before = state(appointed.h)
    assert_refused(appointed.post_statement("head_carol", signed), 400, "bad_signature")
    assert state(appointed.h) == before


def test_a_statement_naming_a_key_the_caller_never_published_is_refused(appointed: Keyed):
    """head_grace's genuine signature, posted by carol: the key is none of Carol's."""
    k = appointed
    k.publish("head_grace")
    st = k.statement(signer_fingerprint=k.pairs["head_grace"].fingerprint)
    before = state(k.h)
    assert_refused(
        k.post_statement("head_carol", k.signed_by(st, "head_grace")), 400, "invalid_key"
    )
    assert state(k.h) == before


def test_a_statement_must_name_the_subjects_published_fingerprint(appointed: Keyed):
    k = appointed
    stranger_fp = IdentityKeyPair.generate().fingerprint
    before = state(k.h)
    wrong = k.statement(subject_fingerprint=stranger_fp)
    assert_refused(k.post_statement("head_carol", k.signed_by(wrong)), 400, "invalid_request")
    # A subject who has published no key at all.
    IdentityKey.objects.filter(user=k.h.surgeon_bob).delete()
    unpublished = k.statement()
    assert_refused(k.post_statement("head_carol", k.signed_by(unpublished)), 400, "invalid_request")
    assert state(k.h) == before


def test_a_replacement_must_name_a_key_the_subject_published(attested: Keyed):
    k = attested
    k.publish("surgeon_bob", replace=True)
    never = IdentityKeyPair.generate()
    before = state(k.h)
    response = k.attest("surgeon_bob", kind="replace", replaces=never)
    assert_refused(response, 400, "invalid_request")
    assert state(k.h) == before


@pytest.mark.parametrize("subject", ["intern_erin", "nurse_ines"])
def test_an_admission_of_a_non_member_is_refused(appointed: Keyed, subject: str):
    k = appointed
    k.publish(subject)
    st = k.statement(
        subject_user=k.user(subject).pk, subject_fingerprint=k.pairs[subject].fingerprint
    )
    before = state(k.h)
    assert_refused(k.post_statement("head_carol", k.signed_by(st)), 403, "forbidden")
    assert state(k.h) == before


@pytest.mark.parametrize(
    "changes",
    [{"role": "head"}, {"kind": "remove"}, {"kind": "role", "role": "head"}],
    ids=["admit with another role", "remove a member", "role he does not have"],
)
def test_a_statement_that_contradicts_the_membership_is_refused(appointed: Keyed, changes: dict):
    k = appointed
    before = state(k.h)
    st = k.statement(**changes)
    assert_refused(k.post_statement("head_carol", k.signed_by(st)), 403, "forbidden")
    assert state(k.h) == before


@pytest.mark.parametrize("field", ["department", "signer_user"])
def test_a_statement_for_another_department_or_signer_is_refused(appointed: Keyed, field: str):
    k = appointed
    other = k.h.vascular.pk if field == "department" else k.h.surgeon_bob.pk
    st = k.statement(**{field: other})
    before = state(k.h)
    assert_refused(k.post_statement("head_carol", k.signed_by(st)), 400, "invalid_request")
    assert state(k.h) == before


def test_a_head_without_a_published_identity_cannot_sign(appointed: Keyed):
    k = appointed
    signed = k.signed_by(k.statement())
    IdentityKey.objects.filter(user=k.h.head_carol).delete()
    before = state(k.h)
    assert_refused(k.post_statement("head_carol", signed), 400, "invalid_key")
    assert state(k.h) == before


def test_removing_someone_who_was_never_a_member_is_refused(appointed: Keyed):
    k = appointed
    k.publish("nurse_ines")
    st = k.statement(
        kind="remove",
        subject_user=k.h.nurse_ines.pk,
        subject_fingerprint=k.pairs["nurse_ines"].fingerprint,
    )
    before = state(k.h)
    assert_refused(k.post_statement("head_carol", k.signed_by(st)), 403, "forbidden")
    assert state(k.h) == before


@pytest.mark.parametrize("field", ["statement", "sig"])
def test_an_unparsable_statement_is_an_invalid_request(appointed: Keyed, field: str):
    k = appointed
    signed = k.signed_by(k.statement())
    broken = {**signed, field: {"v": 1} if field == "statement" else "not base64"}
    before = state(k.h)
    assert_refused(k.post_statement("head_carol", broken), 400, "invalid_request")
    assert state(k.h) == before


# --- The admin key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "role"),
    [
        ("head_carol", "head"),  # only an administrator posts it
        ("admin_zoe", "member"),  # the admin key appoints heads only
    ],
)
def test_an_admin_key_statement_is_refused_unless_it_appoints_a_head_and_an_admin_posts_it(
    keyed: Keyed, caller: str, role: str
):
    k = keyed
    set_admin_key(k)
    subject = "head_carol" if role == "head" else "surgeon_bob"
    st = k.statement(
        subject_user=k.user(subject).pk,
        subject_fingerprint=k.pairs[subject].fingerprint,
        role=role,
        signer_user=None,
        signer_fingerprint=k.pairs[ADMIN].fingerprint,
    )
    before = state(k.h)
    signed = sign_statement(st, k.pairs[ADMIN]).to_dict()
    assert_refused(k.post_statement(caller, signed), 403, "forbidden")
    assert state(k.h) == before


def test_an_appointment_signed_by_another_key_is_refused(keyed: Keyed):
    k = keyed
    set_admin_key(k)
    impostor = IdentityKeyPair.generate()
    st = k.statement(
        subject_user=k.h.head_carol.pk,
        subject_fingerprint=k.pairs["head_carol"].fingerprint,
        role="head",
        signer_user=None,
        signer_fingerprint=impostor.fingerprint,
    )
    before = state(k.h)
    response = k.post_statement("admin_zoe", sign_statement(st, impostor).to_dict())
    assert_refused(response, 400, "bad_signature")
    assert state(k.h) == before


def test_an_appointment_without_an_admin_key_is_refused(keyed: Keyed):
    k = keyed
    k.pairs[ADMIN] = k.h.admin_key = IdentityKeyPair.generate()  # never set on the server
    before = state(k.h)
    assert_refused(k.attest("head_carol", "head", None), 400, "invalid_key")
    assert state(k.h) == before
