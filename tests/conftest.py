"""Shared fixtures: the personas of a small hospital, tokens, sockets.

Personas (as in STYLE.md): in Plastic surgery, `head_carol` (head),
`surgeon_bob` and `nurse_alice` (members), `intern_erin` (removed member);
in Vascular surgery, `head_grace` (head) and `nurse_ines` (member);
`compliance_dan` (compliance officer, no department); `admin_zoe` (admin).
"""

import os
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.management.commands import flush
from django.db import connections
from django.utils import timezone

from audit.guard import maintenance

PASSWORD = "correct-horse-battery-staple"
ORIGIN = b"http://127.0.0.1:8000"

SERVICES = bool(os.environ.get("DATABASE_URL", "").startswith("postgres")) and bool(
    os.environ.get("REDIS_URL")
)

# Emptying the test database between transactional tests has to get past the
# audit tables' append-only triggers; that is what maintenance mode is for.
_original_flush = flush.Command.handle


def _flush_in_maintenance(self, **options):
    with maintenance(connections[options.get("database", "default")]):
        return _original_flush(self, **options)


flush.Command.handle = _flush_in_maintenance


def pytest_collection_modifyitems(config, items):
    """Tests marked `services` need PostgreSQL and Redis: skipped without them, never in CI."""
    if SERVICES:
        return
    reason = "needs DATABASE_URL (PostgreSQL) and REDIS_URL; .ci/run sets both"
    for item in items:
        if "services" in item.keywords:
            if os.environ.get("CI"):
                item.add_marker(
                    pytest.mark.xfail(reason="CI must provide services", strict=True, run=False)
                )
                raise pytest.UsageError(f"{item.nodeid}: {reason} (CI never skips it)")
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
async def _fresh_channel_layer():
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()
    yield


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


def make_user(username: str, **flags: Any):
    from accounts.models import User

    user = User(username=username, display_name=username.replace("_", " ").title(), **flags)
    user.set_password(PASSWORD)
    user.save()
    return user


def build_hospital() -> Hospital:
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
    return Hospital(
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


@pytest.fixture
def hospital(db) -> Hospital:
    return build_hospital()


@pytest.fixture
def live_hospital(transactional_db) -> Hospital:
    """The same hospital, committed, for tests whose work runs in other threads."""
    return build_hospital()


def issue_token(user) -> str:
    """A bearer token as a login would give, without paying for a password check."""
    from django.conf import settings

    from accounts.models import AuthSession, hash_token, new_token

    token = new_token()
    AuthSession.objects.create(
        user=user,
        token_hash=hash_token(token),
        expires_at=timezone.now() + timedelta(seconds=settings.ROUNDS_TOKEN_SECONDS),
    )
    return token


class Api:
    """A bearer-token JSON API client for one persona, as one device."""

    def __init__(self, user: Any) -> None:
        from django.test import Client

        self.user = user
        self.client = Client()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user)}"}

    def get(self, path: str):
        return self.client.get(path, **self.auth)

    def post(self, path: str, body: dict[str, Any]):
        return self.client.post(path, body, content_type="application/json", **self.auth)

    def put(self, path: str, body: dict[str, Any]):
        return self.client.put(path, body, content_type="application/json", **self.auth)

    def delete(self, path: str):
        return self.client.delete(path, **self.auth)


def envelope(size: int = 48, **header: Any) -> dict:
    """An opaque envelope: random bytes stand in for ciphertext the server must not read."""
    import base64

    return {"header": {"v": 1, **header}, "ciphertext": base64.b64encode(os.urandom(size)).decode()}


async def open_socket(token: str | None, origin: bytes | None = ORIGIN, path: str = "/ws/"):
    """A WebsocketCommunicator through the full stack (origin check, session, auth)."""
    from channels.db import database_sync_to_async  # noqa: F401

    from rounds.asgi import application

    headers = []
    if origin is not None:
        headers.append((b"origin", origin))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def connect(token: str):
    """Open, assert the hello frame, return (communicator, hello)."""
    communicator = await open_socket(token)
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "hello", hello
    return communicator, hello


# Run the services hook after `-m` has deselected tests: .ci/run's first stage
# (`-m 'not services'` under CI=true) must not turn deselected tests into errors.
pytest_collection_modifyitems = pytest.hookimpl(trylast=True)(pytest_collection_modifyitems)


@pytest.fixture(scope="session", autouse=True)
def _release_database_connections(django_db_setup, django_db_blocker):
    """Close what worker threads left open, so the test database can be dropped.

    Consumers and actions run in asgiref's worker threads, each with its own
    connection; PostgreSQL refuses to drop a database that still has them.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
