"""The small hospital every test starts from, and the signed material it is made of.

Personas (as in STYLE.md): in Plastic surgery, `head_carol` (head),
`surgeon_bob` and `nurse_alice` (members), `intern_erin` (removed member);
in Vascular surgery, `head_grace` (head) and `nurse_ines` (member);
`compliance_dan` (compliance officer, no department); `admin_zoe` (admin).

Every persona has published an identity, the institution's compliance and
admin keys are set, every member's admission is signed (the admin key
appoints each head, who admits the members) and both departments have room
key version 1, so posts carry real envelopes made with `sealed()`.
`build_hospital(keys=False)` is the same hospital before any key. The
fixtures that build it are in tests/conftest.py.
"""

import functools
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.utils import timezone

from core.crypto import (
    EMPTY_HEAD,
    ChainHead,
    IdentityKeyPair,
    RoomKey,
    SignedKeyVersion,
    SignedStatement,
    encrypt_message,
    make_key_version,
)

PASSWORD = "correct-horse-battery-staple"


@dataclass
class Hospital:
    plastic: Any
    vascular: Any
    head_carol: Any
    surgeon_bob: Any
    nurse_alice: Any
    intern_erin: Any
    head_grace: Any
    nurse_ines: Any
    compliance_dan: Any
    admin_zoe: Any
    patient: Any
    other_patient: Any
    thread: Any
    vascular_thread: Any
    # Identity key pairs by username; room keys by department id (the current
    # version); the institution's compliance key. Empty on a bare hospital.
    keys: dict[str, IdentityKeyPair] = field(default_factory=dict)
    room_keys: dict[int, RoomKey] = field(default_factory=dict)
    compliance_key: IdentityKeyPair | None = None
    # The institution's admin key, which appoints each department's first head.
    admin_key: IdentityKeyPair | None = None
    # Every room key made, by (department id, version).
    key_history: dict[tuple[int, int], RoomKey] = field(default_factory=dict)
    # Each department's stored chain of signed statements, in order.
    chains: dict[int, list[SignedStatement]] = field(default_factory=dict)

    def user(self, who: Any) -> Any:
        """A persona by username, or the user itself."""
        return getattr(self, who) if isinstance(who, str) else who

    def head(self, department: Any) -> ChainHead:
        """The head of the department's stored chain."""
        chain = self.chains.get(getattr(department, "pk", department)) or []
        return ChainHead(len(chain), chain[-1].hash) if chain else EMPTY_HEAD

    def room_key(self, department_id: int, version: int | None = None) -> RoomKey:
        """The department's current room key, or version `version` of it.

        A version never published is made up on the spot: the server cannot
        tell one key from another, only the number in the header.
        """
        if version is None:
            return self.room_keys[department_id]
        key = (department_id, version)
        if key not in self.key_history:
            self.key_history[key] = RoomKey.generate(department=department_id, version=version)
        return self.key_history[key]


@functools.cache
def password_hash() -> str:
    """PASSWORD hashed once per process: every persona shares the password, and the
    hash (salted, Argon2id as configured) verifies the same for each of them."""
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


def make_user(username: str, **flags: Any):
    from accounts.models import User

    user = User(username=username, display_name=username.replace("_", " ").title(), **flags)
    user.password = password_hash()
    user.save()
    return user


PERSONAS = (
    "admin_zoe",
    "head_carol",
    "head_grace",
    "surgeon_bob",
    "nurse_alice",
    "intern_erin",
    "nurse_ines",
    "compliance_dan",
)


def build_hospital(*, keys: bool = True) -> Hospital:
    from chat.actions import do_create_thread
    from chat.models import Thread
    from patients.models import Admission, Patient
    from rooms.actions import do_admit_member, do_create_department, do_remove_member
    from rooms.models import Department

    admin_zoe = make_user("admin_zoe", is_staff=True, is_superuser=True)
    head_carol = make_user("head_carol")
    head_grace = make_user("head_grace")
    plastic = do_create_department(admin_zoe, "Plastic surgery", "plastic-surgery", head_carol)
    vascular = do_create_department(admin_zoe, "Vascular surgery", "vascular-surgery", head_grace)
    surgeon_bob = make_user("surgeon_bob")
    nurse_alice = make_user("nurse_alice")
    intern_erin = make_user("intern_erin")
    nurse_ines = make_user("nurse_ines")
    for user in (surgeon_bob, nurse_alice, intern_erin):
        do_admit_member(head_carol, plastic["id"], user, "member")
    do_admit_member(head_grace, vascular["id"], nurse_ines, "member")
    do_remove_member(head_carol, plastic["id"], intern_erin.pk)
    compliance_dan = make_user("compliance_dan", is_compliance_officer=True)
    now = timezone.now()
    patient = Patient.objects.create(
        ipp="00800100",
        family_name="Lefèvre",
        given_name="Léa",
        birth_date=date(1985, 1, 30),
        sex="F",
    )
    other_patient = Patient.objects.create(
        ipp="00800107",
        family_name="Garnier",
        given_name="Hugo",
        birth_date=date(1951, 6, 2),
        sex="M",
    )
    for p in (patient, other_patient):
        Admission.objects.create(
            patient=p, ward="Plastic surgery", admitted_at=now - timedelta(days=2)
        )
    thread = do_create_thread(surgeon_bob, plastic["id"], patient.pk, "Wound follow-up")
    vascular_thread = do_create_thread(nurse_ines, vascular["id"], other_patient.pk, "Ulcer")
    h = Hospital(
        plastic=Department.objects.get(pk=plastic["id"]),
        vascular=Department.objects.get(pk=vascular["id"]),
        head_carol=head_carol,
        surgeon_bob=surgeon_bob,
        nurse_alice=nurse_alice,
        intern_erin=intern_erin,
        head_grace=head_grace,
        nurse_ines=nurse_ines,
        compliance_dan=compliance_dan,
        admin_zoe=admin_zoe,
        patient=patient,
        other_patient=other_patient,
        thread=Thread.objects.get(pk=thread["id"]),
        vascular_thread=Thread.objects.get(pk=vascular_thread["id"]),
    )
    if keys:
        give_keys(h)
    return h


def give_keys(h: Hospital) -> None:
    """Identities for every persona, the institution's keys, signed admissions of every
    member, room key version 1 of each department.

    Identity and statement rows are written directly and key versions
    published past the use case's checks (tests/accounts/test_keys.py and
    tests/rooms/test_room_keys.py test those): building the hospital is on
    every test's path.
    """
    from accounts.keys import check_set_institution_key
    from accounts.models import IdentityKey

    h.keys = {name: IdentityKeyPair.generate() for name in PERSONAS}
    IdentityKey.objects.bulk_create(
        IdentityKey(user=h.user(name), fingerprint=pair.fingerprint, **pair.public.to_dict())
        for name, pair in h.keys.items()
    )
    h.compliance_key = IdentityKeyPair.generate()
    check_set_institution_key(h.admin_zoe, "compliance", h.compliance_key.public.to_dict())
    h.admin_key = IdentityKeyPair.generate()
    check_set_institution_key(h.admin_zoe, "admin", h.admin_key.public.to_dict())
    plastic = ("head_carol", "surgeon_bob", "nurse_alice")  # intern_erin left before
    vascular = ("head_grace", "nurse_ines")
    append_statement(h, h.plastic, "head_carol", "head", signer=None)
    append_statement(h, h.plastic, "surgeon_bob", "member", signer="head_carol")
    append_statement(h, h.plastic, "nurse_alice", "member", signer="head_carol")
    append_statement(h, h.vascular, "head_grace", "head", signer=None)
    append_statement(h, h.vascular, "nurse_ines", "member", signer="head_grace")
    rotate_room_key(h, h.plastic, h.head_carol, checked=False, version=1, members=plastic)
    rotate_room_key(h, h.vascular, h.head_grace, checked=False, version=1, members=vascular)
    for department in (h.plastic, h.vascular):
        department.refresh_from_db()


def signed_statement(
    h: Hospital,
    department: Any,
    subject: str,
    role: str,
    *,
    signer: str | None,
    kind: str = "admit",
    subject_key: IdentityKeyPair | None = None,
    replaces: IdentityKeyPair | None = None,
    head: ChainHead | None = None,
) -> SignedStatement:
    """A membership statement about `subject` (a username) signed by `signer`'s identity,
    or by the institution's admin key when `signer` is None, placed after the head of
    the department's stored chain (or after `head`)."""
    from rooms.demo import sign_membership

    signing = h.admin_key if signer is None else h.keys[signer]
    assert signing is not None, "a bare hospital has no keys; give_keys() first"
    return sign_membership(
        department=getattr(department, "pk", department),
        at=head or h.head(department),
        kind=kind,
        subject_user=h.user(subject).pk,
        subject_fingerprint=(subject_key or h.keys[subject]).fingerprint,
        role=role,
        signing=signing,
        signer_user=None if signer is None else h.user(signer).pk,
        replaces=None if replaces is None else replaces.fingerprint,
    )


def store_statements(h: Hospital, statements: list[SignedStatement]) -> None:
    """Keep statements as the server would after its checks (which tests/rooms test):
    appended to the department's chain, its head moved on."""
    from rooms.models import Department
    from rooms.models import MembershipStatement as StoredStatement

    for signed in statements:
        st = signed.statement
        StoredStatement.objects.create(
            department_id=st.department,
            kind=st.kind,
            subject_id=st.subject_user,
            signer_id=st.signer_user,
            signed=signed.to_dict(),
            seq=st.seq,
            hash=signed.hash,
        )
        Department.objects.filter(pk=st.department).update(chain_seq=st.seq, chain_head=signed.hash)
        h.chains.setdefault(st.department, []).append(signed)


def append_statement(h: Hospital, department: Any, subject: str, role: str, **how: Any):
    """Sign a statement at the head of the department's chain and store it."""
    signed = signed_statement(h, department, subject, role, **how)
    store_statements(h, [signed])
    return signed


def keep_statement(h: Hospital, department: Any, subject: str, role: str, **how: Any) -> dict:
    """Sign a statement at the head of the department's chain and keep it through the use
    case with all its checks (rooms/chain.py), as the signer's client does: posted by the
    signer, or by admin_zoe for the admin key (`signer=None`). Returns the server's answer."""
    from rooms.chain import check_post_statement

    signed = signed_statement(h, department, subject, role, **how)
    actor = h.admin_zoe if how["signer"] is None else h.user(how["signer"])
    answer = check_post_statement(actor, signed.statement.department, signed.to_dict())
    h.chains.setdefault(signed.statement.department, []).append(signed)
    return answer


def key_version_record(
    h: Hospital, room_key: RoomKey, creator: Any, *, head: ChainHead | None = None
) -> SignedKeyVersion:
    """The signed record of a room key version, made by `creator` at the department's head."""
    creator = h.user(creator)
    return make_key_version(
        room_key,
        head=head or h.head(room_key.department),
        creator_user=creator.pk,
        creator=h.keys[creator.username],
    )


def rotate_room_key(
    h: Hospital,
    department: Any,
    wrapper: Any,
    *,
    checked: bool = True,
    version: int | None = None,
    members: tuple[str, ...] | None = None,
) -> RoomKey:
    """Publish the department's next room key version, as `wrapper`'s client would:
    its record made at the head of the department's chain, and a wrap for every
    recipient the server allows (current members with an
    identity, and the compliance key), through the use case with all its
    checks, or straight to `do_publish_key_version` (`checked=False`).
    `version` and `members` (usernames) save asking the database when known.
    Returns the new RoomKey, which becomes `h.room_keys[department id]`.
    """
    from rooms.demo import new_key_version
    from rooms.keys import allowed_recipients, check_publish_key_version, do_publish_key_version
    from rooms.models import Department

    assert h.compliance_key is not None, "a bare hospital has no keys; give_keys() first"
    department_id = getattr(department, "pk", department)
    wrapper = h.user(wrapper)
    if version is None:
        version = Department.objects.get(pk=department_id).key_version + 1
    room_key = RoomKey.generate(department=department_id, version=version)
    publics = {pair.fingerprint: pair.public for pair in h.keys.values()}
    publics[h.compliance_key.fingerprint] = h.compliance_key.public
    fingerprints = (
        list(allowed_recipients(department_id))
        if members is None
        else [h.keys[name].fingerprint for name in members] + [h.compliance_key.fingerprint]
    )
    signed, wraps = new_key_version(
        room_key,
        at=h.head(department_id),
        creator_user=wrapper.pk,
        creator=h.keys[wrapper.username],
        recipients=[publics[fingerprint] for fingerprint in fingerprints],
    )
    if checked:
        wire = [wrap.to_dict() for wrap in wraps]
        check_publish_key_version(wrapper, department_id, version, signed.to_dict(), wire)
    else:
        do_publish_key_version(wrapper, department_id, signed, wraps)
    h.room_keys[department_id] = room_key
    h.key_history[(department_id, version)] = room_key
    return room_key


def _thread_and_department(h: Hospital, thread: Any) -> tuple[int, int | None]:
    """(thread id, department id) of a Thread, a thread dict as the API gives it, or an id."""
    if isinstance(thread, dict):
        return thread["id"], thread["department"]
    if hasattr(thread, "department_id"):
        return thread.pk, thread.department_id
    for known in (h.thread, h.vascular_thread):
        if known.pk == thread:
            return thread, known.department_id
    return thread, None


PLAINTEXT = b"Wound edges clean, dressing changed at 14:00."


def sealed(
    h: Hospital,
    sender: Any,
    thread: Any,
    client_msg_id: str,
    plaintext: bytes = PLAINTEXT,
    *,
    key_version: int | None = None,
    department: Any = None,
    corrects: str | None = None,
) -> dict:
    """A real envelope, as `sender`'s client makes it: encrypted under the room key, naming
    the head of the department's chain, signed.

    `sender` is a user or a username, `thread` a Thread, a thread dict (as
    the API returns it) or an id. The room key is that of the thread's
    department, or of `department` if given, at its current version unless
    `key_version` names another. The department of a thread id other than
    the hospital's two is looked up in the database, which an async test
    cannot do: pass the thread dict or `department` there. The frame that
    carries the envelope must use the same `client_msg_id`
    (tests/support/sockets.py's `post_frame` takes it from the envelope).
    `corrects` makes it a correction of `sender`'s message of that client_msg_id.
    """
    from chat.models import Thread

    user = h.user(sender)
    thread_id, department_id = _thread_and_department(h, thread)
    if department is not None:
        department_id = getattr(department, "pk", department)
    elif department_id is None:
        department_id = Thread.objects.values_list("department_id", flat=True).get(pk=thread_id)
    return encrypt_message(
        plaintext,
        room_key=h.room_key(department_id, key_version),
        head=h.head(department_id),
        thread=thread_id,
        sender=user.pk,
        client_msg_id=client_msg_id,
        signer=h.keys[user.username],
        corrects=corrects,
    )
