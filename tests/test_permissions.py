"""Who may call which HTTP endpoint: every endpoint, every role that must be refused.

Each refusal is checked for its status, its JSON `code`, and that no row
changed. The allowed role is checked too, on the same request, so a matrix
that refuses everything cannot pass. Departments and threads a caller cannot
see answer `not_found` whether they exist or not (rooms/access/);
`forbidden` is for a member asking for a head's action, a non-admin creating
a department, and a non-clinician looking up patients.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from django.test import Client, RequestFactory
from django.utils import timezone

from accounts.factors import passkeys, signin
from accounts.keys import active_institution_key, check_set_institution_key
from accounts.models import (
    AuthSession,
    BackupCode,
    IdentityKey,
    InstitutionKey,
    KeyBackup,
    Passkey,
    SignInStep,
    TotpDevice,
)
from advice.models import AdviceRequest
from audit.models import AuditEvent
from chat.models import Consult, Event, Message, Receipt, Thread
from compliance.models import Case
from core.crypto import IdentityKeyPair, RoomKey, SignedStatement, b64encode, wrap_room_key
from media.models import Attachment, PhotoExport, ReviewMark, Upload
from patients.models import Admission, Patient
from push.models import PushPreference, PushSubscription
from retention.models import LegalHold
from rooms import keys as room_keys
from rooms.models import (
    Department,
    KeyWrap,
    Membership,
    OnCallRole,
    Role,
    RoomKeyVersion,
    RosterShift,
)
from rooms.models import MembershipStatement as StoredStatement
from tests.support import (
    PASSWORD,
    Hospital,
    give_keys,
    issue_token,
    keep_statement,
    key_version_record,
    make_user,
    sealed,
    signed_statement,
)
from tests.support.authenticator import SoftAuthenticator
from tests.support.factors import ORIGIN
from tests.support.uploads import attach, complete_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def hospital(bare_hospital: Hospital) -> Hospital:
    """Before any key: each endpoint's setup publishes the keys its call needs."""
    return bare_hospital


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str  # as in the OpenAPI schema; ids are filled from the hospital
    query: str = ""
    body: Callable[[Hospital], dict[str, Any]] | None = None
    # Prepare the state the call would change (a thread to reopen, a message to read).
    setup: Callable[[Hospital], None] | None = None

    def path(self, h: Hospital) -> str:
        query = f"?{self.query}" if self.query else ""
        return (self.route + query).format(
            department_id=h.plastic.pk,
            user_id=h.surgeon_bob.pk,
            patient_id=h.patient.pk,
            thread_id=vars(h).get("_consult_thread", h.thread.pk),
            kind="compliance",
            week="2026-W49",
            upload_id=vars(h).get("_upload_id", "00000000-0000-4000-8000-000000000000"),
            message_id=vars(h).get("_message_id", 999_999),
            case_id=vars(h).get("_case_id", 999_999),
            hold_id=vars(h).get("_hold_id", 999_999),
            role_id=vars(h).get("_role_id", 999_999),
            shift_id=vars(h).get("_shift_id", 999_999),
            passkey_id=vars(h).get("_passkey_id", 999_999),
            attachment_id=vars(h).get("_attachment_id", 999_999),
            request_id=vars(h).get("_request_id", 999_999),
            device_id=vars(h).get("_device_id", 999_999),
        )


def close_thread(h: Hospital) -> None:
    h.thread.closed_at = timezone.now()
    h.thread.closed_by = h.head_carol
    h.thread.save(update_fields=["closed_at", "closed_by"])


def post_message(h: Hospital) -> None:
    from chat.actions import check_post_message

    give_keys(h)
    body = sealed(h, "surgeon_bob", h.thread, "bob-perm-0001")
    ack = check_post_message(h.surgeon_bob, h.thread.pk, "bob-perm-0001", body)
    vars(h)["_message_id"] = ack["message_id"]


# --- Keys: the personas' identities live on the hospital object for one test ---------

PERSONAS = (
    "head_carol",
    "surgeon_bob",
    "nurse_alice",
    "intern_erin",
    "head_grace",
    "nurse_ines",
    "compliance_dan",
    "admin_zoe",
)


def keypair(h: Hospital, name: str) -> IdentityKeyPair:
    """The key pair of a persona (or of the institution's "compliance" or "admin" key), made
    once per test. Kept in `h.keys`, where tests/support/hospital.py's signing helpers find them."""
    if name not in h.keys:
        h.keys[name] = IdentityKeyPair.generate()
    return h.keys[name]


def publish_identities(h: Hospital, names: tuple[str, ...] = PERSONAS) -> None:
    for name in names:
        pair = keypair(h, name)
        IdentityKey.objects.create(
            user=getattr(h, name), fingerprint=pair.fingerprint, **pair.public.to_dict()
        )


def set_compliance_key(h: Hospital) -> None:
    h.compliance_key = keypair(h, "compliance")
    check_set_institution_key(h.admin_zoe, "compliance", h.compliance_key.public.to_dict())


def backup_blob(h: Hospital) -> str:
    return vars(h).setdefault("_backup", b64encode(bytes(range(130))))


def room_key(h: Hospital, version: int) -> RoomKey:
    keys = vars(h).setdefault("_room_keys", {})
    if version not in keys:
        keys[version] = RoomKey.generate(department=h.plastic.pk, version=version)
    return keys[version]


def wraps(h: Hospital, version: int, wrapper: str, recipients: tuple[str, ...]) -> list[dict]:
    return [
        wrap_room_key(
            room_key(h, version), recipient=keypair(h, name).public, wrapper=keypair(h, wrapper)
        ).to_dict()
        for name in recipients
    ]


def store_backup(h: Hospital) -> None:
    KeyBackup.objects.create(user=h.nurse_alice, blob=backup_blob(h))


def head_appointed(h: Hospital, names: tuple[str, ...] = PERSONAS) -> None:
    """Identities published (by `names`); the institution's admin key has appointed
    head_carol at the head of Plastic surgery's chain."""
    publish_identities(h, names)
    h.admin_key = keypair(h, "admin")
    check_set_institution_key(h.admin_zoe, "admin", h.admin_key.public.to_dict())
    keep_statement(h, h.plastic, "head_carol", "head", signer=None)


def statement_posted(h: Hospital) -> None:
    head_appointed(h)
    keep_statement(h, h.plastic, "surgeon_bob", "member", signer="head_carol")


def members_attested(h: Hospital) -> None:
    """Everyone has published an identity, the compliance key is set, and the chain holds
    Carol as head, Bob and Alice as members."""
    statement_posted(h)
    set_compliance_key(h)
    keep_statement(h, h.plastic, "nurse_alice", "member", signer="head_carol")


def version_one_without_alice(h: Hospital) -> None:
    """Version 1 exists, made by Carol at the head where she and Bob are members;
    nurse_alice published her identity only afterwards."""
    head_appointed(h, tuple(name for name in PERSONAS if name != "nurse_alice"))
    keep_statement(h, h.plastic, "surgeon_bob", "member", signer="head_carol")
    set_compliance_key(h)
    room_keys.check_publish_key_version(
        h.head_carol,
        h.plastic.pk,
        1,
        key_version_record(h, room_key(h, 1), "head_carol").to_dict(),
        wraps(h, 1, "head_carol", ("head_carol", "surgeon_bob", "compliance")),
    )
    publish_identities(h, ("nurse_alice",))


def admit_statement(h: Hospital) -> dict:
    """head_carol's signed statement, at the chain's head, that surgeon_bob is a member."""
    return signed_statement(h, h.plastic, "surgeon_bob", "member", signer="head_carol").to_dict()


UPLOAD_BYTES = b"ciphertext"


def alice_upload(h: Hospital, *, received: bool = False) -> None:
    """An upload of nurse_alice's for Plastic surgery, its bytes sent if `received`."""
    import io

    from media.uploads import check_create_upload, check_put_chunk

    created = check_create_upload(h.nurse_alice, h.plastic.pk, len(UPLOAD_BYTES))
    if received:
        check_put_chunk(
            h.nurse_alice, created["id"], 0, len(UPLOAD_BYTES), io.BytesIO(UPLOAD_BYTES)
        )
    vars(h)["_upload_id"] = created["id"]


def upload_received(h: Hospital) -> None:
    alice_upload(h, received=True)


def upload_digest(h: Hospital) -> dict[str, str]:
    import hashlib

    return {"sha256": hashlib.sha256(UPLOAD_BYTES).hexdigest()}


def dans_case(h: Hospital) -> None:
    """compliance_dan's open case on the patient of Plastic surgery's thread."""
    from tests.support.cases import open_case

    vars(h)["_case_id"] = open_case(h.compliance_dan, patient_id=h.patient.pk).pk


def fays_case_awaiting_approval(h: Hospital) -> None:
    """compliance_fay's case, opened while the institution required four-eyes."""
    from accounts.models import User
    from tests.support.cases import open_case

    case = open_case(User.objects.get(username="compliance_fay"), patient_id=h.patient.pk)
    case.four_eyes = True
    case.save(update_fields=["four_eyes"])
    vars(h)["_case_id"] = case.pk


def dans_hold(h: Hospital) -> None:
    """A hold compliance_dan placed on the patient under his open case."""
    from retention.actions import check_place_hold

    dans_case(h)
    hold = check_place_hold(
        h.compliance_dan, vars(h)["_case_id"], "Litigation", patient_id=h.patient.pk
    )
    vars(h)["_hold_id"] = hold["id"]


def mark_case(h: Hospital) -> None:
    """The week's case of the patient, marked reviewed by head_carol (to be unmarked)."""
    from media.reviews import do_mark

    do_mark(h.head_carol, h.plastic.pk, "2026-W49", h.patient.pk)


def oncall_roster(h: Hospital) -> None:
    """Plastic surgery's "On-call plastic surgeon", held by surgeon_bob for the next hours."""
    from rooms import oncall

    role = oncall.check_create_role(h.head_carol, h.plastic.pk, "On-call plastic surgeon")
    now = timezone.now()
    shift = oncall.check_add_shift(
        h.head_carol, h.plastic.pk, role["id"], h.surgeon_bob.pk, now, now + timedelta(hours=12)
    )
    vars(h)["_role_id"], vars(h)["_shift_id"] = role["id"], shift["id"]


def asking(h: Hospital) -> None:
    """nurse_alice's message in the patient's thread, for her to make a request of."""
    post_message(h)
    body = sealed(h, "nurse_alice", h.thread, "alice-perm-0001")
    from chat.actions import check_post_message

    ack = check_post_message(h.nurse_alice, h.thread.pk, "alice-perm-0001", body)
    vars(h)["_alice_message_id"] = ack["message_id"]


def advice_request(h: Hospital) -> None:
    """nurse_alice's urgent request to surgeon_bob about the patient, open."""
    from advice.actions import check_request_advice

    asking(h)
    made, _ = check_request_advice(
        h.nurse_alice, vars(h)["_alice_message_id"], "urgent", h.surgeon_bob.pk, None
    )
    vars(h)["_request_id"] = made["id"]


# Consults (chat/consults.py): nurse_ines of Vascular surgery asks Plastic surgery's
# surgeon_bob; the paths name the consult's thread once a setup made one.
def consult_asked(h: Hospital) -> None:
    from tests.support.consults import ask_consult

    give_keys(h)
    ask_consult(h)


def consult_to_open(h: Hospital) -> None:
    from tests.support.consults import ask_consult, open_body

    give_keys(h)
    vars(h)["_open_body"] = open_body(h, ask_consult(h))[0]


def consult_opened(h: Hospital) -> None:
    from tests.support.consults import open_consult, unguest_statement

    give_keys(h)
    key = open_consult(h)
    vars(h)["_end_body"] = {"statement": unguest_statement(h, key.thread, "nurse_ines").to_dict()}


def consult_newcomer(h: Hospital) -> None:
    """As if nurse_alice joined after the consult opened: no wrap of its key yet; Bob's
    wrap of version 1 for her is the body."""
    from chat.models import ThreadKeyWrap

    consult_opened(h)
    ThreadKeyWrap.objects.filter(recipient_user=h.nurse_alice).delete()
    wrap = wrap_room_key(
        vars(h)["_thread_key"],
        recipient=h.keys["nurse_alice"].public,
        wrapper=h.keys["surgeon_bob"],
    )
    vars(h)["_share_body"] = {"wraps": [wrap.to_dict()]}


def consult_ended(h: Hospital) -> None:
    from chat.consults import check_end_consult
    from rooms.demo import new_key_version

    consult_opened(h)
    thread_id = vars(h)["_consult_thread"]
    check_end_consult(h.nurse_ines, thread_id, vars(h)["_end_body"]["statement"])
    h.chains[h.plastic.pk].append(SignedStatement.from_dict(vars(h)["_end_body"]["statement"]))
    key = RoomKey.generate(department=h.plastic.pk, version=2, thread=thread_id)
    members = ("head_carol", "surgeon_bob", "nurse_alice")
    assert h.compliance_key is not None
    signed, wraps = new_key_version(
        key,
        at=h.head(h.plastic),
        creator_user=h.surgeon_bob.pk,
        creator=h.keys["surgeon_bob"],
        recipients=[h.keys[n].public for n in members] + [h.compliance_key.public],
    )
    vars(h)["_v2_body"] = {
        "key_version": signed.to_dict(),
        "wraps": [w.to_dict() for w in wraps],
    }


def roster_file(h: Hospital) -> dict[str, str]:
    return {
        "format": "csv",
        "content": "On-call plastic surgeon,nurse_alice,"
        "2026-12-20T08:00:00Z,2026-12-20T20:00:00Z\n",
    }


# Push: every signed-in user manages their own devices' subscriptions and quiet mode;
# someone else's subscription is not found (push/subscriptions.py).
PUSH_ENDPOINT = "https://updates.push.services.mozilla.com/wpush/v2/alice-phone"


def push_subscription(h: Hospital) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from push.vapid import b64url

    # A browser's key: any valid point does, as nothing is sent to this endpoint.
    key = ec.derive_private_key(7, ec.SECP256R1()).public_key()
    raw = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {"endpoint": PUSH_ENDPOINT, "keys": {"p256dh": b64url(raw), "auth": b64url(bytes(16))}}


def alices_push_subscription(h: Hospital) -> None:
    from push.subscriptions import check_subscribe

    body = push_subscription(h)
    session = AuthSession.objects.filter(user=h.nurse_alice).first()
    if session is None:
        issue_token(h.nurse_alice)
        session = AuthSession.objects.get(user=h.nurse_alice)
    check_subscribe(session, body["endpoint"], body["keys"]["p256dh"], body["keys"]["auth"])


def alices_other_device(h: Hospital) -> None:
    """A second login of nurse_alice's: hers to revoke, not found by anyone else."""
    issue_token(h.nurse_alice)
    vars(h)["_device_id"] = AuthSession.objects.filter(user=h.nurse_alice).latest("pk").pk


def bobs_devices(h: Hospital) -> None:
    issue_token(h.surgeon_bob)


FHIR_BASE = "https://fhir.hopital.example/fhir"


@pytest.fixture(autouse=True)
def fhir_server_configured(settings: Any) -> None:
    """Photos may be sent to the patient record (media.record_api)."""
    settings.ROUNDS_FHIR_BASE_URL = FHIR_BASE


def plastic_photo(h: Hospital) -> None:
    """A photo posted in Plastic surgery: in its members' library only."""
    upload = complete_upload(h.surgeon_bob, h.plastic)
    attach(h, str(upload.pk))
    vars(h)["_attachment_id"] = Attachment.objects.get(upload=upload).pk


def alices_new_app(h: Hospital) -> None:
    """nurse_alice began setting up an authenticator app: the body is its code."""
    secret = pyotp.random_base32()
    TotpDevice.objects.create(user=h.nurse_alice, secret=secret)
    vars(h)["_totp_code"] = pyotp.TOTP(secret).now()


def alices_app(h: Hospital) -> None:
    TotpDevice.objects.create(
        user=h.nurse_alice, secret=pyotp.random_base32(), confirmed_at=timezone.now()
    )


def alices_passkey(h: Hospital) -> None:
    alices_app(h)
    vars(h)["_passkey_id"] = Passkey.objects.create(
        user=h.nurse_alice, credential_id="cred-alice", public_key=b"\x00", name="Phone"
    ).pk


def alices_passkey_ceremony(h: Hospital) -> None:
    """A registration ceremony of nurse_alice's, answered by a software authenticator."""
    request = RequestFactory().post("/", HTTP_ORIGIN=ORIGIN)
    ceremony, step = signin.new_step(SignInStep.Kind.PASSKEY, h.nurse_alice)
    options = passkeys.registration_options(request, h.nurse_alice, step)
    credential = SoftAuthenticator(ORIGIN).create(options)
    vars(h)["_add_passkey"] = {"ceremony": ceremony, "credential": credential, "name": "Phone"}


def bobs_app(h: Hospital) -> None:
    TotpDevice.objects.create(
        user=h.surgeon_bob, secret=pyotp.random_base32(), confirmed_at=timezone.now()
    )


DEPARTMENT = "/api/departments/{department_id}"
ONCALL = DEPARTMENT + "/oncall"
CASE = "/api/compliance/cases/{case_id}"
DEPARTMENT_LIBRARY = "/api/library/departments/{department_id}"
REVIEW = DEPARTMENT_LIBRARY + "/reviews/{week}"
THREAD = "/api/threads/{thread_id}"
ADVICE = "/api/advice/{request_id}"
CONSULT = "/api/consults/{thread_id}"
ENDPOINTS: dict[str, Endpoint] = {
    "consults.mine": Endpoint("get", "/api/consults"),
    "consults.targets": Endpoint("get", "/api/consults/targets"),
    "consults.detail": Endpoint("get", CONSULT, setup=consult_asked),
    "consults.open": Endpoint(
        "post", CONSULT + "/open", body=lambda h: vars(h)["_open_body"], setup=consult_to_open
    ),
    "consults.end": Endpoint(
        "post", CONSULT + "/end", body=lambda h: vars(h)["_end_body"], setup=consult_opened
    ),
    "consults.keys": Endpoint("get", CONSULT + "/keys", setup=consult_opened),
    "consults.share_wraps": Endpoint(
        "post",
        CONSULT + "/keys/wraps",
        body=lambda h: vars(h)["_share_body"],
        setup=consult_newcomer,
    ),
    "consults.publish_key": Endpoint(
        "post", CONSULT + "/keys", body=lambda h: vars(h)["_v2_body"], setup=consult_ended
    ),
    "advice.ask": Endpoint(
        "post",
        "/api/advice",
        body=lambda h: {
            "message": vars(h).get("_alice_message_id", 999_999),
            "priority": "urgent",
            "to_user": h.surgeon_bob.pk,
        },
        setup=asking,
    ),
    "advice.list": Endpoint("get", "/api/advice", query="department={department_id}"),
    "advice.detail": Endpoint("get", ADVICE, setup=advice_request),
    "advice.acknowledge": Endpoint(
        "post", ADVICE + "/acknowledge", body=lambda h: {"answer": "on_it"}, setup=advice_request
    ),
    "advice.pass": Endpoint(
        "post", ADVICE + "/pass", body=lambda h: {"to_user": h.head_carol.pk}, setup=advice_request
    ),
    "advice.cancel": Endpoint("post", ADVICE + "/cancel", setup=advice_request),
    "auth.me": Endpoint("get", "/api/auth/me"),
    "auth.logout": Endpoint("post", "/api/auth/logout"),
    "auth.devices": Endpoint("get", "/api/auth/devices"),
    "auth.revoke_device": Endpoint(
        "delete", "/api/auth/devices/{device_id}", setup=alices_other_device
    ),
    "auth.revoke_all_devices": Endpoint(
        "post", "/api/auth/users/{user_id}/devices/revoke", setup=bobs_devices
    ),
    "auth.second_factors": Endpoint("get", "/api/auth/second-factor"),
    "auth.begin_totp": Endpoint("post", "/api/auth/second-factor/totp"),
    "auth.confirm_totp": Endpoint(
        "post",
        "/api/auth/second-factor/totp/confirm",
        body=lambda h: {"code": vars(h)["_totp_code"]},
        setup=alices_new_app,
    ),
    "auth.remove_totp": Endpoint(
        "post",
        "/api/auth/second-factor/totp/remove",
        body=lambda h: {"password": PASSWORD},
        setup=alices_app,
    ),
    "auth.passkey_options": Endpoint("post", "/api/auth/second-factor/passkeys/options"),
    "auth.add_passkey": Endpoint(
        "post",
        "/api/auth/second-factor/passkeys",
        body=lambda h: vars(h)["_add_passkey"],
        setup=alices_passkey_ceremony,
    ),
    "auth.remove_passkey": Endpoint(
        "post",
        "/api/auth/second-factor/passkeys/{passkey_id}/remove",
        body=lambda h: {"password": PASSWORD},
        setup=alices_passkey,
    ),
    "auth.new_backup_codes": Endpoint(
        "post",
        "/api/auth/second-factor/backup-codes",
        body=lambda h: {"password": PASSWORD},
        setup=alices_app,
    ),
    "auth.reset_second_factor": Endpoint(
        "post", "/api/auth/users/{user_id}/second-factor/reset", setup=bobs_app
    ),
    "departments.list": Endpoint("get", "/api/departments"),
    "departments.create": Endpoint(
        "post",
        "/api/departments",
        body=lambda h: {"name": "Dermatology", "head_user_id": h.surgeon_bob.pk},
    ),
    "departments.members": Endpoint("get", DEPARTMENT + "/members"),
    "departments.admit": Endpoint(
        "post",
        DEPARTMENT + "/members",
        body=lambda h: {"user_id": h.nurse_ines.pk, "role": "member"},
    ),
    "departments.remove": Endpoint(
        "delete",
        DEPARTMENT + "/members/{user_id}",
        body=lambda h: {"reason": "Moved to the burns unit"},
    ),
    "departments.role": Endpoint(
        "post", DEPARTMENT + "/members/{user_id}/role", body=lambda h: {"role": "head"}
    ),
    "patients.search": Endpoint("post", "/api/patients/search", body=lambda h: {"name": "lef"}),
    "patients.get": Endpoint("get", "/api/patients/{patient_id}"),
    "people.search": Endpoint("post", "/api/people/search", body=lambda h: {"q": "bob"}),
    "threads.create": Endpoint(
        "post",
        "/api/threads",
        body=lambda h: {"department": h.plastic.pk, "patient": h.patient.pk, "title": "Pre-op"},
    ),
    "threads.by_department": Endpoint("get", DEPARTMENT + "/threads"),
    "threads.by_patient": Endpoint("get", "/api/patients/{patient_id}/threads"),
    "threads.close": Endpoint(
        "post", THREAD + "/close", body=lambda h: {"reason": "Patient discharged home"}
    ),
    "threads.reopen": Endpoint("post", THREAD + "/reopen", setup=close_thread),
    "threads.messages": Endpoint("get", THREAD + "/messages", setup=post_message),
    "threads.receipts": Endpoint("get", THREAD + "/receipts", setup=post_message),
    "messages.redact": Endpoint(
        "post",
        "/api/messages/{message_id}/redact",
        setup=post_message,
        body=lambda h: {"reason": "Posted in the wrong thread"},
    ),
    "keys.publish_identity": Endpoint(
        "put",
        "/api/keys/identity",
        body=lambda h: {"public": keypair(h, "nurse_alice").public.to_dict()},
    ),
    "keys.identity": Endpoint("get", "/api/keys/identity/{user_id}", setup=publish_identities),
    "keys.store_backup": Endpoint(
        "put", "/api/keys/backup", body=lambda h: {"blob": backup_blob(h)}
    ),
    "keys.fetch_backup": Endpoint("get", "/api/keys/backup", setup=store_backup),
    "keys.institution": Endpoint("get", "/api/keys/institution", setup=set_compliance_key),
    "keys.set_institution": Endpoint(
        "put",
        "/api/keys/institution/{kind}",
        body=lambda h: {"public": keypair(h, "compliance").public.to_dict()},
    ),
    "departments.keys": Endpoint("get", DEPARTMENT + "/keys", setup=version_one_without_alice),
    "departments.publish_key": Endpoint(
        "post",
        DEPARTMENT + "/keys",
        setup=members_attested,
        body=lambda h: {
            "version": 1,
            "record": key_version_record(h, room_key(h, 1), "nurse_alice").to_dict(),
            "wraps": wraps(
                h, 1, "nurse_alice", ("head_carol", "surgeon_bob", "nurse_alice", "compliance")
            ),
        },
    ),
    "departments.share_wraps": Endpoint(
        "post",
        DEPARTMENT + "/keys/wraps",
        setup=version_one_without_alice,
        body=lambda h: {"wraps": wraps(h, 1, "surgeon_bob", ("nurse_alice",))},
    ),
    "departments.statements": Endpoint("get", DEPARTMENT + "/statements", setup=statement_posted),
    "departments.post_statement": Endpoint(
        "post",
        DEPARTMENT + "/statements",
        setup=head_appointed,
        body=lambda h: {"signed": admit_statement(h)},
    ),
    "uploads.create": Endpoint(
        "post", "/api/uploads", body=lambda h: {"department": h.plastic.pk, "size": 1024}
    ),
    "uploads.status": Endpoint("get", "/api/uploads/{upload_id}", setup=alice_upload),
    "uploads.complete": Endpoint(
        "post", "/api/uploads/{upload_id}/complete", setup=upload_received, body=upload_digest
    ),
    "library.keywords": Endpoint("get", "/api/library/keywords"),
    "library.photos": Endpoint("get", "/api/library/photos"),
    "library.photo_record": Endpoint(
        "get", "/api/library/photos/{attachment_id}/record", setup=plastic_photo
    ),
    "library.record_sent": Endpoint(
        "post",
        "/api/library/photos/{attachment_id}/record",
        body=lambda h: {"server": FHIR_BASE, "document_reference": "1", "binary": "2"},
        setup=plastic_photo,
    ),
    "library.sequences": Endpoint("get", "/api/library/patients/{patient_id}/sequences"),
    "library.stats": Endpoint("get", DEPARTMENT_LIBRARY + "/stats"),
    "library.review_marks": Endpoint("get", REVIEW),
    "library.mark_reviewed": Endpoint("put", REVIEW + "/patients/{patient_id}"),
    "library.unmark_reviewed": Endpoint(
        "delete", REVIEW + "/patients/{patient_id}", setup=lambda h: mark_case(h)
    ),
    "library.reports": Endpoint(
        "post", "/api/library/reports", body=lambda h: {"patient": h.patient.pk, "photos": 1}
    ),
    "compliance.cases": Endpoint("get", "/api/compliance/cases", setup=dans_case),
    "compliance.open": Endpoint(
        "post",
        "/api/compliance/cases",
        body=lambda h: {"reference": "INC-7", "reason": "Incident 7", "patient": h.patient.pk},
    ),
    "compliance.approve": Endpoint("post", CASE + "/approve", setup=fays_case_awaiting_approval),
    "compliance.close": Endpoint("post", CASE + "/close", setup=dans_case),
    "compliance.audit": Endpoint("get", CASE + "/audit", setup=dans_case),
    "compliance.audit_proof": Endpoint("post", CASE + "/audit/proof", setup=dans_case),
    "compliance.threads": Endpoint("get", CASE + "/threads", setup=dans_case),
    "compliance.timeline": Endpoint("get", CASE + "/threads/{thread_id}/timeline", setup=dans_case),
    "compliance.access_report": Endpoint(
        "get", CASE + "/patients/{patient_id}/access-report", setup=dans_case
    ),
    "retention.holds": Endpoint("get", "/api/retention/holds", setup=dans_hold),
    "retention.place": Endpoint(
        "post",
        "/api/retention/holds",
        body=lambda h: {
            "case": vars(h).get("_case_id", 999_999),
            "reason": "Litigation",
            "patient": h.patient.pk,
        },
        setup=dans_case,
    ),
    "oncall.roles": Endpoint("get", ONCALL + "/roles", setup=oncall_roster),
    "oncall.create_role": Endpoint(
        "post", ONCALL + "/roles", body=lambda h: {"name": "Night nurse"}
    ),
    "oncall.rename_role": Endpoint(
        "post",
        ONCALL + "/roles/{role_id}/rename",
        body=lambda h: {"name": "Plastic surgeon on call"},
        setup=oncall_roster,
    ),
    "oncall.archive_role": Endpoint(
        "post", ONCALL + "/roles/{role_id}/archive", setup=oncall_roster
    ),
    "oncall.on_duty": Endpoint("get", ONCALL + "/roles/{role_id}/on-duty", setup=oncall_roster),
    "oncall.roster": Endpoint("get", ONCALL + "/roster", setup=oncall_roster),
    "oncall.add_shift": Endpoint(
        "post",
        ONCALL + "/shifts",
        body=lambda h: {
            "role": vars(h)["_role_id"],
            "user": h.nurse_alice.pk,
            "starts_at": "2026-12-20T08:00:00+01:00",
            "ends_at": "2026-12-20T20:00:00+01:00",
        },
        setup=oncall_roster,
    ),
    "oncall.remove_shift": Endpoint("delete", ONCALL + "/shifts/{shift_id}", setup=oncall_roster),
    "oncall.import_preview": Endpoint(
        "post", ONCALL + "/import/preview", body=roster_file, setup=oncall_roster
    ),
    "oncall.import": Endpoint("post", ONCALL + "/import", body=roster_file, setup=oncall_roster),
    "push.key": Endpoint("get", "/api/push/key"),
    "push.subscribe": Endpoint("post", "/api/push/subscriptions", body=push_subscription),
    "push.unsubscribe": Endpoint(
        "delete",
        "/api/push/subscriptions",
        body=lambda h: {"endpoint": PUSH_ENDPOINT},
        setup=alices_push_subscription,
    ),
    "push.preferences": Endpoint("get", "/api/push/preferences"),
    "push.set_preferences": Endpoint(
        "put", "/api/push/preferences", body=lambda h: {"quiet_off_duty": True}
    ),
    "retention.release": Endpoint(
        "post",
        "/api/retention/holds/{hold_id}/release",
        body=lambda h: {"reason": "Settled"},
        setup=dans_hold,
    ),
}

# Personas of tests/support/hospital.py, plus `stranger`: a plain user in no department.
# head_grace heads Vascular surgery: a head elsewhere is a stranger in Plastic surgery.
OUTSIDERS = ("compliance_dan", "stranger", "intern_erin", "nurse_ines", "head_grace")
NOT_THE_GUEST = tuple(role for role in OUTSIDERS if role != "nurse_ines")
THREAD_AND_DEPARTMENT = (
    "departments.members",
    "departments.admit",
    "departments.remove",
    "departments.role",
    "threads.create",
    "threads.by_department",
    "threads.close",
    "threads.reopen",
    "threads.messages",
    "threads.receipts",
)
DEPARTMENT_KEYS = (
    "departments.keys",
    "departments.publish_key",
    "departments.share_wraps",
    "departments.statements",
    "departments.post_statement",
)
# On-call roles and the roster: members read them, heads edit them; administrators, who are
# members of no department, meet them as missing (rooms/access/, access_oncall).
ONCALL_READ = ("oncall.roles", "oncall.on_duty", "oncall.roster")
ONCALL_EDIT = (
    "oncall.create_role",
    "oncall.rename_role",
    "oncall.archive_role",
    "oncall.add_shift",
    "oncall.remove_shift",
    "oncall.import_preview",
    "oncall.import",
)
HEAD_ONLY = (
    "departments.admit",
    "departments.remove",
    "departments.role",
    "departments.post_statement",
)
REVIEW_MARKS = ("library.review_marks", "library.mark_reviewed", "library.unmark_reviewed")
HEAD_ONLY_THREAD = ("threads.close", "threads.reopen")
# A message is redacted by its sender (surgeon_bob) or a head of its department.
SENDER_OR_HEAD = ("messages.redact",)
# Review cases are compliance officers' only; a case is used by the officer who opened it
# (compliance_fay meets no such case), approved by another.
COMPLIANCE = (
    "compliance.cases",
    "compliance.open",
    "compliance.approve",
    "compliance.close",
    "compliance.audit",
    "compliance.audit_proof",
    "compliance.threads",
    "compliance.timeline",
    "compliance.access_report",
)
CLINICIANS = ("head_carol", "nurse_alice", "stranger", "admin_zoe", "nurse_ines")
# Legal holds too: every officer lists them; one places a hold under their own open case,
# and a hold is released by its placer or its case's officers (compliance_fay is neither).
HOLDS = ("retention.holds", "retention.place", "retention.release")

# Advice requests: seen by their department's members (and their requester); answered
# by whoever was asked or a head; withdrawn by their requester (docs/advice.md).
ADVICE_SEEN = ("advice.detail", "advice.acknowledge", "advice.pass", "advice.cancel")

# (endpoint, role, status, code)
REFUSED: list[tuple[str, str, int, str]] = [
    *[(name, "anonymous", 401, "not_authenticated") for name in ENDPOINTS],
    # Someone else's push subscription is not found, as an unknown one.
    ("push.unsubscribe", "surgeon_bob", 404, "not_found"),
    *[
        (name, role, 404, "not_found")
        for name in THREAD_AND_DEPARTMENT + DEPARTMENT_KEYS + SENDER_OR_HEAD
        for role in OUTSIDERS
    ],
    *[(name, "nurse_alice", 403, "forbidden") for name in SENDER_OR_HEAD],
    *[
        (name, role, 404, "not_found")
        for name in ONCALL_READ + ONCALL_EDIT
        for role in (*OUTSIDERS, "admin_zoe")
    ],
    *[
        (name, role, 403, "forbidden")
        for name in ONCALL_EDIT
        for role in ("nurse_alice", "surgeon_bob")
    ],
    *[(name, "nurse_alice", 403, "forbidden") for name in HEAD_ONLY + HEAD_ONLY_THREAD],
    *[(name, "surgeon_bob", 403, "forbidden") for name in HEAD_ONLY_THREAD],
    ("departments.post_statement", "surgeon_bob", 403, "forbidden"),
    *[(name, role, 404, "not_found") for name in ADVICE_SEEN for role in (*OUTSIDERS, "admin_zoe")],
    *[("advice.ask", role, 404, "not_found") for role in (*OUTSIDERS, "admin_zoe", "surgeon_bob")],
    *[("advice.list", role, 404, "not_found") for role in (*OUTSIDERS, "admin_zoe")],
    *[(name, "nurse_alice", 403, "forbidden") for name in ("advice.acknowledge", "advice.pass")],
    ("advice.cancel", "surgeon_bob", 403, "forbidden"),
    # A consult is seen by its department's members and its guest (nurse_ines) only;
    # opened by whom it was put to or a head; its key versions made by members only.
    *[
        (name, role, 404, "not_found")
        for name in (
            "consults.detail",
            "consults.open",
            "consults.end",
            "consults.keys",
            "consults.publish_key",
            "consults.share_wraps",
        )
        for role in (*NOT_THE_GUEST, "admin_zoe")
    ],
    *[("consults.open", role, 403, "forbidden") for role in ("nurse_alice", "nurse_ines")],
    ("consults.publish_key", "nurse_ines", 403, "forbidden"),
    ("consults.share_wraps", "nurse_ines", 403, "forbidden"),
    *[
        ("consults.targets", role, 403, "forbidden")
        for role in ("compliance_dan", "stranger", "admin_zoe")
    ],
    # Public keys are for oneself, colleagues, compliance and administrators (who appoint
    # heads); anyone else meets no such user.
    *[
        ("keys.identity", role, 404, "not_found")
        for role in ("stranger", "intern_erin", "nurse_ines", "head_grace")
    ],
    # A backup is fetched by its owner only: anyone else finds none of their own.
    *[
        ("keys.fetch_backup", role, 404, "not_found")
        for role in ("surgeon_bob", "compliance_dan", "admin_zoe")
    ],
    # A device is revoked by its own user; another's is not found, as an unknown one.
    *[("auth.revoke_device", role, 404, "not_found") for role in ("surgeon_bob", "admin_zoe")],
    *[
        ("auth.revoke_all_devices", role, 403, "forbidden")
        for role in ("head_carol", "nurse_alice", "compliance_dan", "stranger")
    ],
    # A user's second factors are their own: another's passkey is not found; a
    # registration ceremony of someone else's is no ceremony of theirs.
    *[("auth.remove_passkey", role, 404, "not_found") for role in ("surgeon_bob", "admin_zoe")],
    *[("auth.add_passkey", role, 401, "sign_in_expired") for role in ("surgeon_bob", "admin_zoe")],
    # A photo is sent to the record by a member of its department; anyone else, an officer
    # too (a sending is a clinician's act, never a compliance read), finds no such photo.
    *[
        (name, role, 404, "not_found")
        for name in ("library.photo_record", "library.record_sent")
        for role in ("stranger", "nurse_ines", "compliance_dan")
    ],
    *[
        ("auth.reset_second_factor", role, 403, "forbidden")
        for role in ("head_carol", "nurse_alice", "compliance_dan", "stranger")
    ],
    *[
        ("keys.set_institution", role, 403, "forbidden")
        for role in ("head_carol", "nurse_alice", "compliance_dan", "stranger")
    ],
    *[
        ("departments.create", role, 403, "forbidden")
        for role in ("head_carol", "nurse_alice", "compliance_dan", "stranger")
    ],
    # Uploads: made for one's own department, seen and completed by their owner only
    # (a colleague meets no such upload).
    *[("uploads.create", role, 404, "not_found") for role in OUTSIDERS],
    *[
        (name, role, 404, "not_found")
        for name in ("uploads.status", "uploads.complete")
        for role in (*OUTSIDERS, "surgeon_bob", "head_carol")
    ],
    # The library shows one's own departments' photos; a compliance officer who is
    # no member gives a case and a reason first.
    *[
        (name, role, 404, "not_found")
        for name in ("library.sequences", "library.stats", "library.reports")
        for role in ("stranger", "intern_erin", "nurse_ines", "head_grace")
    ],
    *[
        (name, "compliance_dan", 400, "invalid_request")
        for name in ("library.photos", "library.sequences", "library.stats", "library.reports")
    ],
    # The weekly review's marks: members see them, heads set and clear them.
    *[
        (name, role, 404, "not_found")
        for name in REVIEW_MARKS
        for role in ("stranger", "intern_erin", "nurse_ines", "head_grace", "compliance_dan")
    ],
    *[
        (name, role, 403, "forbidden")
        for name in REVIEW_MARKS[1:]
        for role in ("nurse_alice", "surgeon_bob")
    ],
    *[(name, role, 403, "forbidden") for name in COMPLIANCE for role in CLINICIANS],
    *[
        (name, "compliance_fay", 404, "not_found")
        for name in (
            "compliance.close",
            "compliance.audit",
            "compliance.audit_proof",
            "compliance.threads",
            "compliance.timeline",
            "compliance.access_report",
        )
    ],
    ("compliance.approve", "compliance_fay", 403, "forbidden"),
    *[(name, role, 403, "forbidden") for name in HOLDS for role in CLINICIANS],
    *[
        (name, "compliance_fay", 404, "not_found")
        for name in ("retention.place", "retention.release")
    ],
    # Patient look-up is for members of some department, any department.
    *[
        (name, role, 403, "forbidden")
        for name in ("patients.search", "patients.get")
        for role in ("compliance_dan", "stranger", "intern_erin")
    ],
    # The colleague directory is for those who admit: heads, of any department, and
    # administrators. Members, officers and people in no department are refused.
    *[
        ("people.search", role, 403, "forbidden")
        for role in (
            "nurse_alice",
            "surgeon_bob",
            "nurse_ines",
            "intern_erin",
            "compliance_dan",
            "stranger",
        )
    ],
]

# (endpoint, role, status): the allowed role succeeds on the very same request.
ALLOWED: list[tuple[str, str, int]] = [
    ("auth.me", "nurse_alice", 200),
    ("auth.me", "compliance_dan", 200),
    ("auth.logout", "nurse_alice", 200),
    ("auth.devices", "nurse_alice", 200),
    ("auth.devices", "compliance_dan", 200),
    ("auth.revoke_device", "nurse_alice", 200),
    ("auth.revoke_all_devices", "admin_zoe", 200),
    *[("auth.second_factors", role, 200) for role in ("nurse_alice", "compliance_dan")],
    ("auth.begin_totp", "nurse_alice", 200),
    ("auth.confirm_totp", "nurse_alice", 200),
    ("auth.remove_totp", "nurse_alice", 200),
    ("auth.passkey_options", "nurse_alice", 200),
    ("auth.add_passkey", "nurse_alice", 200),
    ("auth.remove_passkey", "nurse_alice", 200),
    ("auth.new_backup_codes", "nurse_alice", 200),
    ("auth.reset_second_factor", "admin_zoe", 200),
    ("departments.list", "nurse_alice", 200),
    ("departments.list", "stranger", 200),
    ("departments.create", "admin_zoe", 201),
    ("departments.members", "nurse_alice", 200),
    ("departments.admit", "head_carol", 201),
    ("departments.remove", "head_carol", 200),
    ("departments.role", "head_carol", 200),
    ("patients.search", "nurse_alice", 200),
    ("patients.search", "nurse_ines", 200),
    ("patients.get", "nurse_alice", 200),
    ("patients.get", "nurse_ines", 200),
    ("people.search", "head_carol", 200),
    ("people.search", "head_grace", 200),
    ("people.search", "admin_zoe", 200),
    ("threads.create", "nurse_alice", 201),
    ("threads.by_department", "nurse_alice", 200),
    ("threads.by_patient", "nurse_alice", 200),
    ("threads.close", "head_carol", 200),
    ("threads.reopen", "head_carol", 200),
    ("threads.messages", "nurse_alice", 200),
    ("threads.receipts", "nurse_alice", 200),
    ("messages.redact", "surgeon_bob", 200),
    ("messages.redact", "head_carol", 200),
    ("keys.publish_identity", "nurse_alice", 200),
    ("keys.identity", "surgeon_bob", 200),
    ("keys.identity", "nurse_alice", 200),
    ("keys.identity", "head_carol", 200),
    ("keys.identity", "compliance_dan", 200),
    ("keys.identity", "admin_zoe", 200),
    ("keys.store_backup", "nurse_alice", 200),
    ("keys.fetch_backup", "nurse_alice", 200),
    ("keys.institution", "nurse_alice", 200),
    ("keys.institution", "stranger", 200),
    ("keys.set_institution", "admin_zoe", 200),
    ("departments.keys", "nurse_alice", 200),
    ("departments.publish_key", "nurse_alice", 201),
    ("departments.share_wraps", "surgeon_bob", 201),
    ("departments.statements", "nurse_alice", 200),
    ("departments.post_statement", "head_carol", 201),
    ("uploads.create", "nurse_alice", 201),
    ("uploads.status", "nurse_alice", 200),
    ("uploads.complete", "nurse_alice", 200),
    ("library.keywords", "nurse_alice", 200),
    ("library.keywords", "compliance_dan", 200),
    ("library.photos", "nurse_alice", 200),
    ("library.photo_record", "nurse_alice", 200),
    ("library.record_sent", "nurse_alice", 201),
    ("library.photos", "stranger", 200),
    ("library.sequences", "nurse_alice", 200),
    ("library.stats", "nurse_alice", 200),
    ("library.reports", "nurse_alice", 201),
    ("library.review_marks", "nurse_alice", 200),
    ("library.mark_reviewed", "head_carol", 200),
    ("library.unmark_reviewed", "head_carol", 200),
    ("compliance.cases", "compliance_dan", 200),
    ("compliance.cases", "compliance_fay", 200),
    ("compliance.open", "compliance_dan", 201),
    ("compliance.approve", "compliance_dan", 200),
    ("compliance.close", "compliance_dan", 200),
    ("compliance.audit", "compliance_dan", 200),
    ("compliance.audit_proof", "compliance_dan", 200),
    ("compliance.threads", "compliance_dan", 200),
    ("compliance.timeline", "compliance_dan", 200),
    ("compliance.access_report", "compliance_dan", 200),
    ("retention.holds", "compliance_dan", 200),
    ("retention.holds", "compliance_fay", 200),
    ("retention.place", "compliance_dan", 201),
    ("retention.release", "compliance_dan", 200),
    *[(name, role, 200) for name in ONCALL_READ for role in ("nurse_alice", "head_carol")],
    ("oncall.create_role", "head_carol", 201),
    ("oncall.rename_role", "head_carol", 200),
    ("oncall.archive_role", "head_carol", 200),
    ("oncall.add_shift", "head_carol", 201),
    ("oncall.remove_shift", "head_carol", 200),
    ("oncall.import_preview", "head_carol", 200),
    ("oncall.import", "head_carol", 201),
    *[(name, "nurse_alice", 200) for name in ("push.key", "push.preferences")],
    *[(name, "compliance_dan", 200) for name in ("push.key", "push.preferences")],
    ("push.subscribe", "nurse_alice", 200),
    ("push.unsubscribe", "nurse_alice", 200),
    ("push.set_preferences", "nurse_alice", 200),
    ("advice.ask", "nurse_alice", 201),
    ("advice.list", "surgeon_bob", 200),
    ("advice.detail", "nurse_alice", 200),
    ("advice.detail", "surgeon_bob", 200),
    ("advice.acknowledge", "surgeon_bob", 200),
    ("advice.acknowledge", "head_carol", 200),
    ("advice.pass", "surgeon_bob", 200),
    ("advice.cancel", "nurse_alice", 200),
    *[("consults.mine", role, 200) for role in ("nurse_ines", "nurse_alice", "stranger")],
    *[("consults.targets", role, 200) for role in ("nurse_ines", "nurse_alice")],
    *[("consults.detail", role, 200) for role in ("nurse_ines", "nurse_alice")],
    ("consults.open", "surgeon_bob", 200),
    ("consults.end", "nurse_ines", 200),
    *[("consults.keys", role, 200) for role in ("nurse_ines", "surgeon_bob")],
    ("consults.publish_key", "surgeon_bob", 200),
    ("consults.share_wraps", "surgeon_bob", 200),
]


def test_the_matrix_covers_every_endpoint_both_ways():
    """A new endpoint fails this test until it has its rows in the matrix."""
    from rounds.urls import api

    schema = api.get_openapi_schema(path_prefix="/api")
    routes = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    # Signing in is open to all, and has its own tests (tests/accounts).
    routes = {(method, path) for method, path in routes if not path.startswith("/api/auth/login")}
    assert routes == {(e.method, e.route) for e in ENDPOINTS.values()}
    assert {name for name, *_ in REFUSED} == set(ENDPOINTS)
    assert {name for name, *_ in ALLOWED} == set(ENDPOINTS)


@pytest.fixture
def actors(hospital) -> dict[str, Any]:
    people = {
        name: getattr(hospital, name)
        for name in (
            "head_carol",
            "surgeon_bob",
            "nurse_alice",
            "intern_erin",
            "head_grace",
            "nurse_ines",
            "compliance_dan",
            "admin_zoe",
        )
    }
    people["stranger"] = make_user("stranger")
    # The second compliance officer, who approves a case under four-eyes.
    people["compliance_fay"] = make_user("compliance_fay", is_compliance_officer=True)
    people["anonymous"] = None
    return people


def token_for(user: Any) -> str | None:
    return None if user is None else issue_token(user)


def call(endpoint: Endpoint, h: Hospital, token: str | None):
    """One request as an API client would send it: bearer token, CSRF enforced."""
    client = Client(enforce_csrf_checks=True)
    kwargs: dict[str, Any] = {}
    if token is not None:
        kwargs["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if endpoint.body is not None:
        kwargs.update(data=endpoint.body(h), content_type="application/json")
    return getattr(client, endpoint.method)(endpoint.path(h), **kwargs)


def snapshot() -> dict[str, Any]:
    """Everything an endpoint could change."""
    return {
        "departments": list(
            Department.objects.order_by("pk").values_list(
                "pk",
                "name",
                "key_version",
                "rotation_required",
                "key_commitment",
                "chain_seq",
                "chain_head",
            )
        ),
        "memberships": list(
            Membership.objects.order_by("pk").values_list(
                "pk", "department_id", "user_id", "role", "removed_at"
            )
        ),
        "threads": list(Thread.objects.order_by("pk").values_list("pk", "closed_at", "last_seq")),
        "messages": list(
            Message.objects.order_by("pk").values_list("pk", "redacted_at", "redacted_by_id")
        ),
        "receipts": Receipt.objects.count(),
        "advice": list(
            AdviceRequest.objects.order_by("pk").values_list("pk", "status", "holder_id", "step")
        ),
        "events": Event.objects.count(),
        "patients": Patient.objects.count(),
        "admissions": Admission.objects.count(),
        "live_logins": AuthSession.objects.filter(revoked_at__isnull=True).count(),
        "second_factors": list(
            TotpDevice.objects.order_by("pk").values_list("pk", "confirmed_at", "last_step")
        )
        + list(Passkey.objects.order_by("pk").values_list("pk", "user_id"))
        + list(BackupCode.objects.order_by("pk").values_list("pk", "used_at")),
        "identities": list(
            IdentityKey.objects.order_by("pk").values_list(
                "pk", "user_id", "fingerprint", "replaced_at"
            )
        ),
        "backups": list(KeyBackup.objects.order_by("pk").values_list("user_id", "blob")),
        "institution_keys": list(
            InstitutionKey.objects.order_by("pk").values_list("pk", "kind", "replaced_at")
        ),
        "key_versions": list(
            RoomKeyVersion.objects.order_by("pk").values_list("department_id", "version")
        ),
        "wraps": KeyWrap.objects.count(),
        "statements": StoredStatement.objects.count(),
        "uploads": list(
            Upload.objects.order_by("pk").values_list("pk", "state", "received", "sha256")
        ),
        "attachments": Attachment.objects.count(),
        # Publishing, fetching a backup, sharing and signing are all audited.
        "key_audit": AuditEvent.objects.filter(action__startswith="key.").count(),
        "cases": list(
            Case.objects.order_by("pk").values_list("pk", "reference", "approved_at", "closed_at")
        ),
        # A refused release writes no entry: only a release is audited, before it happens.
        "case_audit": AuditEvent.objects.filter(action__startswith="case.").count(),
        "holds": list(LegalHold.objects.order_by("pk").values_list("pk", "released_at")),
        "hold_audit": AuditEvent.objects.filter(action__startswith="hold.").count(),
        # A refused directory search is not counted against anyone's hour.
        "people_audit": AuditEvent.objects.filter(action="people.searched").count(),
        "review_marks": list(ReviewMark.objects.order_by("pk").values_list("pk", "by_id")),
        "photo_exports": PhotoExport.objects.count(),
        "review_audit": AuditEvent.objects.filter(action__startswith="review.").count(),
        "oncall_roles": list(
            OnCallRole.objects.order_by("pk").values_list("pk", "name", "archived_at")
        ),
        "roster_shifts": list(
            RosterShift.objects.order_by("pk").values_list("pk", "user_id", "removed_at")
        ),
        "oncall_audit": AuditEvent.objects.filter(action__startswith="oncall.").count(),
        "push_subscriptions": list(
            PushSubscription.objects.order_by("pk").values_list(
                "pk", "user_id", "removed_at", "gone_at"
            )
        ),
        "push_preferences": list(
            PushPreference.objects.order_by("pk").values_list("user_id", "quiet_off_duty")
        ),
        "push_audit": AuditEvent.objects.filter(action__startswith="push.").count(),
        "consults": list(
            Consult.objects.order_by("pk").values_list("thread_id", "state", "key_version")
        ),
        "consult_audit": AuditEvent.objects.filter(action__startswith="consult.").count(),
    }


@pytest.mark.parametrize(
    ("name", "role", "status", "code"),
    REFUSED,
    ids=[f"{name}-{role}" for name, role, *_ in REFUSED],
)
def test_refused(hospital, actors, name, role, status, code, checkpoint_sink):
    endpoint = ENDPOINTS[name]
    if endpoint.setup:
        endpoint.setup(hospital)
    token = token_for(actors[role])
    before = snapshot()
    response = call(endpoint, hospital, token)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("name", "role", "status"),
    ALLOWED,
    ids=[f"{name}-{role}" for name, role, _ in ALLOWED],
)
def test_allowed(hospital, actors, name, role, status, checkpoint_sink):
    endpoint = ENDPOINTS[name]
    if endpoint.setup:
        endpoint.setup(hospital)
    response = call(endpoint, hospital, token_for(actors[role]))
    assert response.status_code == status, response.content
    body = response.json()
    assert not (isinstance(body, dict) and "code" in body), body
    check = EFFECTS.get(name)
    if check is not None:
        assert check(hospital), f"{name} answered {status} but did not do its work"


def _active(h: Hospital, user: Any, role: str | None = None) -> bool:
    rows = Membership.objects.active().filter(department=h.plastic, user=user)
    return rows.filter(role=role).exists() if role else rows.exists()


def _thread_closed(h: Hospital) -> bool:
    h.thread.refresh_from_db()
    return h.thread.is_closed


EFFECTS: dict[str, Callable[[Hospital], bool]] = {
    "push.subscribe": lambda h: (
        PushSubscription.objects.standing()
        .filter(user=h.nurse_alice, endpoint=PUSH_ENDPOINT)
        .exists()
    ),
    "push.unsubscribe": lambda h: not PushSubscription.objects.standing().exists(),
    "push.set_preferences": lambda h: PushPreference.objects.filter(
        user=h.nurse_alice, quiet_off_duty=True
    ).exists(),
    "oncall.create_role": lambda h: OnCallRole.objects.filter(name="Night nurse").exists(),
    "oncall.rename_role": lambda h: OnCallRole.objects.filter(
        name="Plastic surgeon on call"
    ).exists(),
    "oncall.archive_role": lambda h: OnCallRole.objects.filter(
        pk=vars(h)["_role_id"], archived_by=h.head_carol
    ).exists(),
    "oncall.add_shift": lambda h: RosterShift.objects.filter(user=h.nurse_alice).exists(),
    "oncall.remove_shift": lambda h: RosterShift.objects.filter(
        pk=vars(h)["_shift_id"], removed_by=h.head_carol
    ).exists(),
    "oncall.import_preview": lambda h: RosterShift.objects.count() == 1,
    "oncall.import": lambda h: (
        RosterShift.objects.filter(user=h.nurse_alice).exists()
        and AuditEvent.objects.filter(action="oncall.roster_imported").count() == 1
    ),
    "library.mark_reviewed": lambda h: ReviewMark.objects.filter(
        department=h.plastic, patient=h.patient, by=h.head_carol
    ).exists(),
    "library.unmark_reviewed": lambda h: not ReviewMark.objects.exists(),
    "auth.logout": lambda h: AuthSession.objects.filter(
        user=h.nurse_alice, revoked_at__isnull=False
    ).exists(),
    "auth.revoke_device": lambda h: AuthSession.objects.filter(
        pk=vars(h)["_device_id"], revoked_at__isnull=False
    ).exists(),
    "auth.revoke_all_devices": lambda h: (
        not AuthSession.objects.filter(user=h.surgeon_bob, revoked_at__isnull=True).exists()
    ),
    "library.record_sent": lambda h: PhotoExport.objects.filter(by=h.nurse_alice).exists(),
    "auth.begin_totp": lambda h: TotpDevice.objects.filter(user=h.nurse_alice).exists(),
    "auth.confirm_totp": lambda h: TotpDevice.objects.filter(
        user=h.nurse_alice, confirmed_at__isnull=False
    ).exists(),
    "auth.remove_totp": lambda h: not TotpDevice.objects.exists(),
    "auth.add_passkey": lambda h: Passkey.objects.filter(user=h.nurse_alice).exists(),
    "auth.remove_passkey": lambda h: not Passkey.objects.exists(),
    "auth.new_backup_codes": lambda h: BackupCode.objects.filter(user=h.nurse_alice).count() == 10,
    "auth.reset_second_factor": lambda h: not TotpDevice.objects.exists(),
    "departments.create": lambda h: Membership.objects.filter(
        department__name="Dermatology", user=h.surgeon_bob, role=Role.HEAD
    ).exists(),
    "departments.admit": lambda h: _active(h, h.nurse_ines, Role.MEMBER),
    "departments.remove": lambda h: (
        not _active(h, h.surgeon_bob)
        and AuditEvent.objects.filter(
            action="member.removed", data__reason="Moved to the burns unit"
        ).exists()
    ),
    "departments.role": lambda h: _active(h, h.surgeon_bob, Role.HEAD),
    "threads.create": lambda h: Thread.objects.filter(title="Pre-op").exists(),
    "threads.close": lambda h: (
        _thread_closed(h)
        and AuditEvent.objects.filter(
            action="thread.closed", data__reason="Patient discharged home"
        ).exists()
    ),
    "people.search": lambda h: AuditEvent.objects.filter(action="people.searched").count() == 1,
    "threads.reopen": lambda h: not _thread_closed(h),
    "messages.redact": lambda h: (
        Message.objects.filter(
            pk=vars(h)["_message_id"], redacted_at__isnull=False, ciphertext__gt=""
        ).exists()
        and AuditEvent.objects.filter(action="message.redacted").count() == 1
    ),
    "keys.publish_identity": lambda h: IdentityKey.objects.filter(
        user=h.nurse_alice, fingerprint=keypair(h, "nurse_alice").fingerprint, replaced_at=None
    ).exists(),
    "keys.store_backup": lambda h: KeyBackup.objects.filter(
        user=h.nurse_alice, blob=backup_blob(h)
    ).exists(),
    "keys.fetch_backup": lambda h: AuditEvent.objects.filter(
        action="key.backup_fetched", actor_id=h.nurse_alice.pk
    ).exists(),
    "keys.set_institution": lambda h: (
        getattr(active_institution_key("compliance"), "fingerprint", None)
        == keypair(h, "compliance").fingerprint
    ),
    "departments.publish_key": lambda h: (
        Department.objects.filter(pk=h.plastic.pk, key_version=1).exists()
        and KeyWrap.objects.filter(key_version__version=1).count() == 4
    ),
    "departments.share_wraps": lambda h: KeyWrap.objects.filter(
        recipient_user=h.nurse_alice, key_version__version=1
    ).exists(),
    "departments.post_statement": lambda h: StoredStatement.objects.filter(
        department=h.plastic, subject=h.surgeon_bob, signer=h.head_carol
    ).exists(),
    "compliance.open": lambda h: Case.objects.filter(reference="INC-7").exists(),
    "compliance.approve": lambda h: Case.objects.filter(
        pk=vars(h)["_case_id"], approved_by=h.compliance_dan
    ).exists(),
    "compliance.close": lambda h: Case.objects.filter(
        pk=vars(h)["_case_id"], closed_by=h.compliance_dan
    ).exists(),
    "compliance.threads": lambda h: AuditEvent.objects.filter(
        action="case.released", data__case=vars(h)["_case_id"]
    ).exists(),
    "compliance.timeline": lambda h: AuditEvent.objects.filter(
        action="case.released", object_type="thread", object_id=str(h.thread.pk)
    ).exists(),
    "retention.place": lambda h: (
        LegalHold.objects.filter(
            case_id=vars(h)["_case_id"], patient=h.patient, released_at=None
        ).exists()
        and AuditEvent.objects.filter(action="hold.placed").exists()
    ),
    "retention.release": lambda h: (
        LegalHold.objects.filter(pk=vars(h)["_hold_id"], released_by=h.compliance_dan).exists()
        and AuditEvent.objects.filter(action="hold.released").exists()
    ),
}


# --- What the allowed calls did, and what they show ------------------------------


def test_listing_departments_shows_only_ones_own(hospital, actors):
    def names(role: str) -> list[str]:
        return [
            d["name"]
            for d in call(ENDPOINTS["departments.list"], hospital, token_for(actors[role])).json()
        ]

    assert names("nurse_alice") == ["Plastic surgery"]
    assert names("nurse_ines") == ["Vascular surgery"]
    assert names("intern_erin") == []
    assert names("compliance_dan") == []


def test_threads_of_a_patient_only_from_ones_own_departments(hospital, actors):
    def titles(role: str, patient: Patient) -> list[str]:
        endpoint = Endpoint("get", f"/api/patients/{patient.pk}/threads")
        response = call(endpoint, hospital, token_for(actors[role]))
        assert response.status_code == 200
        return [t["title"] for t in response.json()]

    assert titles("nurse_alice", hospital.patient) == ["Wound follow-up"]
    assert titles("nurse_alice", hospital.other_patient) == []
    assert titles("nurse_ines", hospital.other_patient) == ["Ulcer"]
    for role in ("nurse_ines", "intern_erin", "compliance_dan", "stranger"):
        assert titles(role, hospital.patient) == []


def test_a_missing_thread_and_a_foreign_one_look_the_same(hospital, actors):
    foreign = call(ENDPOINTS["threads.messages"], hospital, token_for(actors["nurse_ines"]))
    missing = call(
        Endpoint("get", "/api/threads/999999/messages"),
        hospital,
        token_for(actors["nurse_ines"]),
    )
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


def test_a_missing_message_and_a_foreign_one_look_the_same(hospital, actors):
    endpoint = ENDPOINTS["messages.redact"]
    endpoint.setup(hospital)
    foreign = call(endpoint, hospital, token_for(actors["nurse_ines"]))
    vars(hospital)["_message_id"] = 999_999
    missing = call(endpoint, hospital, token_for(actors["surgeon_bob"]))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


def test_a_missing_department_and_a_foreign_one_look_the_same(hospital, actors):
    foreign = call(ENDPOINTS["departments.members"], hospital, token_for(actors["nurse_ines"]))
    missing = call(
        Endpoint("get", "/api/departments/999999/members"),
        hospital,
        token_for(actors["nurse_ines"]),
    )
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


def test_a_head_of_another_department_is_a_stranger_here(hospital, actors):
    for name in ("departments.admit", "departments.remove", "threads.close", "messages.redact"):
        endpoint = ENDPOINTS[name]
        if endpoint.setup:
            endpoint.setup(hospital)
        response = call(endpoint, hospital, token_for(actors["head_grace"]))
        assert response.status_code == 404, name
        assert response.json()["code"] == "not_found"


def test_the_directory_refuses_a_short_search_before_searching(hospital, actors):
    """A head who may search still names two letters; a member is refused whatever they
    type, so the refusal by role does not depend on the query."""
    short = Endpoint("post", "/api/people/search", body=lambda h: {"q": "b"})
    carol, alice = token_for(actors["head_carol"]), token_for(actors["nurse_alice"])
    before = snapshot()
    response = call(short, hospital, carol)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_request"
    response = call(short, hospital, alice)
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "forbidden"
    assert snapshot() == before


@pytest.mark.parametrize("credential", ["bogus", "revoked", "expired", "inactive"])
def test_dead_credentials_are_anonymous(hospital, credential):
    user = hospital.nurse_alice
    token = issue_token(user)
    if credential == "bogus":
        token = "rnd_" + "x" * 43
    elif credential == "revoked":
        AuthSession.objects.filter(user=user).update(revoked_at=timezone.now())
    elif credential == "expired":
        AuthSession.objects.filter(user=user).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    else:
        user.is_active = False
        user.save(update_fields=["is_active"])
    client = Client()
    for path in ("/api/auth/me", f"/api/departments/{hospital.plastic.pk}/members"):
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401, (path, response.content)
        assert response.json()["code"] == "not_authenticated"


def test_a_promoted_member_gains_the_head_actions(hospital, actors):
    Membership.objects.filter(department=hospital.plastic, user=hospital.nurse_alice).update(
        role=Role.HEAD
    )
    response = call(ENDPOINTS["threads.close"], hospital, token_for(actors["nurse_alice"]))
    assert response.status_code == 200
    assert response.json()["closed_at"] is not None


UNSAFE = [name for name, endpoint in ENDPOINTS.items() if endpoint.method != "get"]
ALLOWED_ROLE = {name: role for name, role, _ in reversed(ALLOWED)}


@pytest.mark.parametrize("name", UNSAFE)
def test_a_browser_session_needs_the_csrf_token_for_unsafe_calls(
    hospital, actors, name, checkpoint_sink
):
    """A cookie rides along with any page the browser opens; the CSRF header does not."""
    endpoint = ENDPOINTS[name]
    if endpoint.setup:
        endpoint.setup(hospital)
    client = Client(enforce_csrf_checks=True)
    username = ALLOWED_ROLE[name]
    login = client.post(
        "/api/auth/login",
        {"username": username, "password": PASSWORD},
        content_type="application/json",
    )
    if login.status_code == 401:  # the setup gave the user an authenticator app
        assert login.json()["code"] == "second_factor_required"
        secret = TotpDevice.objects.get(user__username=username).secret
        login = client.post(
            "/api/auth/login/totp",
            {"pending": login.json()["data"]["pending"], "code": pyotp.TOTP(secret).now()},
            content_type="application/json",
        )
    assert login.status_code == 200
    body = endpoint.body(hospital) if endpoint.body else None
    kwargs: dict[str, Any] = (
        {} if body is None else {"data": body, "content_type": "application/json"}
    )
    before = snapshot()
    refused = getattr(client, endpoint.method)(endpoint.path(hospital), **kwargs)
    assert refused.status_code == 403, refused.content
    assert refused.json()["code"] == "forbidden"
    assert snapshot() == before
    done = getattr(client, endpoint.method)(
        endpoint.path(hospital), HTTP_X_CSRFTOKEN=login.json()["csrf_token"], **kwargs
    )
    assert done.status_code in (200, 201), done.content
