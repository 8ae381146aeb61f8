"""The ADT listener over a real socket (interop/mllp.py, interop/adt.py, docs/interop.md):
every event type applied and acknowledged AA, every refusal acknowledged AE or AR with
its reason, nothing half-applied, a message sent twice applied once."""

import asyncio
import contextlib

import pytest
from asgiref.sync import sync_to_async

from audit.models import AuditEvent
from chat.models import Event, Thread
from interop.mllp import serve
from patients.models import Admission, AdtMessage, LocationMapping, Patient, PotentialDuplicate
from tests.support.adt import Person, Sender, adt, read_ack

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mapped(hospital):
    LocationMapping.objects.create(location="PLASTIC", department=hospital.plastic)
    LocationMapping.objects.create(location="VASC", department=hospital.vascular)
    return hospital


@pytest.fixture
async def listener(mapped):
    server = await serve("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port
    server.close()
    await server.wait_closed()


@contextlib.asynccontextmanager
async def connected(port: int):
    sender = await Sender.connect(port)
    try:
        yield sender
    finally:
        await sender.close()


def stays(ipp: str) -> list[tuple[str, bool, bool]]:
    """(location, discharged, cancelled) of the patient's stays, in order."""
    return [
        (a.location, a.discharged_at is not None, a.cancelled_at is not None)
        for a in Admission.objects.filter(patient__ipp=ipp).order_by("admitted_at", "pk")
    ]


db = sync_to_async


async def test_an_admission_is_applied_and_acknowledged(listener, mapped):
    async with connected(listener) as gam:
        ack = await gam.send(adt("A01", control="ADM-1"))
    assert (ack.code, ack.control_id) == ("AA", "ADM-1")
    patient = await db(Patient.objects.get)(ipp="00900001")
    assert (patient.family_name, patient.given_name, str(patient.birth_date)) == (
        "LEFÈVRE",
        "Anne",
        "1957-04-12",
    )
    stay = await db(Admission.objects.get)(patient=patient)
    assert (stay.department_id, stay.visit_number, stay.kind) == (
        mapped.plastic.pk,
        "V0001",
        "inpatient",
    )
    # ZBE-2, the movement's date, is the stay's start (Europe/Paris local time).
    assert stay.admitted_at.isoformat() == "2026-12-06T09:10:00+00:00"
    actions = await db(
        lambda: list(
            AuditEvent.objects.filter(action__startswith="patient.").values_list("action", "data")
        )
    )()
    assert ("patient.created", {"source": "adt", "reference": "ADM-1"}) in actions
    kept = await db(AdtMessage.objects.get)(control_id="ADM-1")
    assert kept.outcome == "applied" and kept.event == "A01"


async def test_a_stay_through_transfer_and_discharge_and_their_cancellations(listener):
    async with connected(listener) as gam:
        for message in (
            adt("A01", at="20261201080000"),
            adt("A02", location="VASC", at="20261202080000"),
            adt("A12", at="20261202090000"),  # the transfer did not happen
            adt("A02", location="VASC", at="20261202100000"),
            adt("A03", location="VASC", at="20261203100000"),
            adt("A13", at="20261203110000"),  # nor the discharge
        ):
            assert (await gam.send(message)).code == "AA"
    assert await db(stays)("00900001") == [
        ("PLASTIC", True, False),
        ("VASC", False, True),
        ("VASC", False, False),
    ]
    async with connected(listener) as gam:
        assert (await gam.send(adt("A11", at="20261203120000"))).code == "AA"
    assert [cancelled for *_, cancelled in await db(stays)("00900001")] == [True, True, True]


async def test_outpatients_pre_admissions_and_person_updates(listener):
    someone = Person(ipp="00900002", family="MARTIN", given="Paul", sex="M")
    async with connected(listener) as gam:
        assert (await gam.send(adt("A28", someone))).code == "AA"
        assert (await gam.send(adt("A05", someone))).code == "AA"
        assert await db(stays)("00900002") == []  # the stay comes with its admission
        assert (await gam.send(adt("A04", someone, visit="C77"))).code == "AA"
        renamed = Person(ipp="00900002", family="MARTIN-DURAND", given="Paul", sex="M")
        assert (await gam.send(adt("A31", renamed))).code == "AA"
        assert (await gam.send(adt("A08", renamed, segments=[]))).code == "AA"
    patient = await db(Patient.objects.get)(ipp="00900002")
    assert patient.family_name == "MARTIN-DURAND"
    stay = await db(Admission.objects.get)(patient=patient)
    assert stay.kind == "outpatient"


async def test_a_merge_moves_threads_and_photos_to_the_surviving_record(listener, mapped):
    duplicate = mapped.patient  # the hospital's patient, who has a thread
    survivor = Person(
        ipp="00900003",
        family=duplicate.family_name,
        given=duplicate.given_name,
        birth=duplicate.birth_date.strftime("%Y%m%d"),
    )
    async with connected(listener) as gam:
        assert (await gam.send(adt("A28", survivor))).code == "AA"
        flagged = await db(PotentialDuplicate.objects.count)()
        ack = await gam.send(adt("A40", survivor, merged_ipp=duplicate.ipp, control="MRG-1"))
        assert ack.code == "AA", ack.reason
        again = await gam.send(adt("A40", survivor, merged_ipp=duplicate.ipp, control="MRG-2"))
        assert again.code == "AA"
    assert flagged == 1
    surviving = await db(Patient.objects.get)(ipp="00900003")
    assert await db(Thread.objects.filter(patient=surviving).count)() == 1
    merged = await db(Patient.objects.get)(pk=duplicate.pk)
    assert merged.merged_into_id == surviving.pk
    event = await db(Event.objects.filter(kind="thread.patient_changed").first)()
    assert event.payload["patient"]["ipp"] == "00900003"
    assert event.payload["previous"] == {"id": duplicate.pk, "ipp": duplicate.ipp}
    entries = await db(lambda: list(AuditEvent.objects.filter(action="patient.merged")))()
    assert len(entries) == 1 and entries[0].data["threads"] == 1


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        (adt("A99"), "AR", "unsupported message type ADT A99"),
        (
            adt("A01").replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01"),
            "AR",
            "unsupported message type ORU R01",
        ),
        (adt("A01", Person(ipp="")), "AE", "PID-3"),
        (
            adt("A01", Person(authority="OTHER-HOSPITAL")),
            "AE",
            "no IPP of assigning authority ROUNDS-DEMO",
        ),
        (adt("A01", location="NOWHERE"), "AE", "unmapped location 'NOWHERE'"),
        (adt("A03"), "AE", "the patient is unknown"),
        (adt("A01").replace("PID|1||", "PID|1||").replace("\rPV1|", "\rPV1"), "AE", "PV1-3"),
        (
            "MSH|#~\\&|GAM|CHU|ROUNDS|CHU|20261206||ADT^A01|X1|P|2.5",
            "AR",
            "standard encoding characters",
        ),
        ("EVN|A01|20261206\rPID|1", "AR", "does not begin with an MSH segment"),
        (adt("A01", charset="KOI8-R"), "AR", "unsupported character set"),
        (adt("A01").replace("|19570412|", "|12/04/1957|"), "AE", "PID-7 is not an HL7 date"),
    ],
)
async def test_a_message_that_cannot_be_applied_is_refused_with_its_reason(
    listener, message, code, reason
):
    async with connected(listener) as gam:
        ack = await gam.send(message)
    assert ack.code == code
    assert reason in ack.reason, ack.reason
    assert any(s.startswith("ERR|") for s in ack.segments)
    assert await db(Admission.objects.filter(patient__ipp="00900001").count)() == 0


async def test_a_discharge_before_its_admission_is_refused_then_replayed(listener, mapped):
    async with connected(listener) as gam:
        assert (await gam.send(adt("A28"))).code == "AA"
        early = await gam.send(adt("A03", control="DIS-1", at="20261206120000"))
        assert early.code == "AE" and "no open stay" in early.reason
        assert (await gam.send(adt("A01", at="20261206080000"))).code == "AA"
    await db(call_command_quietly)("adt_replay")
    assert await db(stays)("00900001") == [("PLASTIC", True, False)]
    assert (await db(AdtMessage.objects.get)(control_id="DIS-1")).outcome == "applied"


async def test_an_unmapped_location_applies_once_mapped(listener, mapped):
    async with connected(listener) as gam:
        assert (await gam.send(adt("A01", location="BURNS", control="BRN-1"))).code == "AE"
        await db(call_command_quietly)("adt_locations", "--set", "BURNS", mapped.plastic.name)
        # The system sends it again (it had no AA): applied now.
        assert (await gam.send(adt("A01", location="BURNS", control="BRN-1"))).code == "AA"
    assert await db(stays)("00900001") == [("BURNS", False, False)]


async def test_a_message_sent_twice_is_applied_once(listener):
    message = adt("A01", control="DUP-1")
    async with connected(listener) as gam:
        first, second = await gam.send(message), await gam.send(message)
    assert (first.code, second.code) == ("AA", "AA")
    assert await db(stays)("00900001") == [("PLASTIC", False, False)]
    assert await db(AuditEvent.objects.filter(action="patient.admitted").count)() == 1


async def test_a_latin_1_message_is_read_in_its_character_set(listener):
    async with connected(listener) as gam:
        ack = await gam.send(adt("A01", charset="8859/1").encode("latin-1"))
        bad = await gam.send(adt("A01", control="U8", charset="UNICODE UTF-8").encode("latin-1"))
    assert ack.code == "AA"
    assert (await db(Patient.objects.get)(ipp="00900001")).family_name == "LEFÈVRE"
    assert bad.code == "AR" and "not valid UNICODE UTF-8" in bad.reason


async def test_a_frame_cut_by_the_connection_closing_applies_nothing(listener):
    _, writer = await asyncio.open_connection("127.0.0.1", listener)
    writer.write(b"\x0b" + adt("A01", control="CUT-1").encode()[:80])
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.2)
    assert not await db(AdtMessage.objects.filter(control_id="CUT-1").exists)()
    async with connected(listener) as gam:  # the listener still serves
        assert (await gam.send(adt("A01"))).code == "AA"


async def test_a_frame_without_its_start_byte_is_refused_and_the_connection_closed(listener):
    reader, writer = await asyncio.open_connection("127.0.0.1", listener)
    writer.write(adt("A01").encode() + b"\x1c\r")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    assert b"MSA|AR|" in answer and b"start byte" in answer
    writer.close()


async def test_an_oversized_message_is_refused(listener, settings):
    settings.ROUNDS_ADT_MAX_BYTES = 4096
    huge = adt("A01", segments=["NTE|1||" + "x" * 300_000])
    reader, writer = await asyncio.open_connection("127.0.0.1", listener)
    writer.write(b"\x0b" + huge.encode() + b"\x1c\r")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    assert b"MSA|AR|" in answer
    writer.close()
    assert not await db(AdtMessage.objects.exists)()


def call_command_quietly(*args: str) -> None:
    import io

    from django.core.management import call_command

    call_command(*args, stdout=io.StringIO())


def test_a_file_of_messages_loads_as_over_mllp(mapped, tmp_path):
    """The first load: the same messages, a file, segments on lines, blank lines between."""
    from django.core.management.base import CommandError

    first = adt("A01", Person(ipp="00900010", family="ÉLOI", given="Zoé"), control="F-1")
    second = adt(
        "A02",
        Person(ipp="00900010", family="ÉLOI", given="Zoé"),
        location="VASC",
        control="F-2",
        at="20261206120000",
    )
    path = tmp_path / "first-load.hl7"
    path.write_bytes((first + "\n\n" + second).replace("\r", "\n").encode())
    call_command_quietly("adt_import", str(path))
    assert stays("00900010") == [("PLASTIC", True, False), ("VASC", False, False)]
    assert Patient.objects.get(ipp="00900010").family_name == "ÉLOI"
    broken = tmp_path / "broken.hl7"
    broken.write_bytes(adt("A01", location="NOWHERE", control="F-3").encode())
    with pytest.raises(CommandError):
        call_command_quietly("adt_import", str(broken))
    # Kept as it came, accents and all, for the replay once the location is mapped.
    LocationMapping.objects.create(location="NOWHERE", department=mapped.vascular)
    call_command_quietly("adt_replay")
    assert AdtMessage.objects.get(control_id="F-3").outcome == "applied"


def test_a_message_the_database_refuses_is_answered_ae_and_kept(mapped, monkeypatch):
    """A rule of the record only the database enforces (a constraint) refuses the message
    like any other: AE, nothing applied, kept for a replay; never an AA."""
    from django.db import IntegrityError

    from interop import adt as adt_module

    def clash(*args, **kwargs):
        raise IntegrityError("CHECK constraint failed")

    monkeypatch.setattr(adt_module, "apply", clash)
    answer = adt_module.handle(adt("A01", control="DB-1").encode(), "test")
    assert answer.code == "AE" and "breaks a rule" in answer.reason
    assert AdtMessage.objects.get(control_id="DB-1").outcome == "refused"
    assert not Patient.objects.filter(ipp="00900001").exists()


async def test_a_pipelining_sender_gets_every_ack_in_order(listener):
    """Messages sent before their ACKs are committed together, each still whole or not at
    all: the refused one in the middle changes nothing of the others."""
    messages = [adt("A01", Person(ipp=f"0095{n:04d}"), control=f"PIPE-{n}") for n in range(12)]
    messages[5] = adt("A01", Person(ipp="00950005"), location="NOWHERE", control="PIPE-5")
    sender = await Sender.connect(listener)
    try:
        for message in messages:
            sender.writer.writeblock(message.encode())
        await sender.writer.drain()
        acks = [read_ack(await asyncio.wait_for(sender.reader.readblock(), 10)) for _ in messages]
    finally:
        await sender.close()
    assert [(a.code, a.control_id) for a in acks] == [
        ("AE" if n == 5 else "AA", f"PIPE-{n}") for n in range(12)
    ]
    admitted = await db(
        lambda: sorted(
            Admission.objects.filter(patient__ipp__startswith="0095").values_list(
                "patient__ipp", flat=True
            )
        )
    )()
    assert admitted == [f"0095{n:04d}" for n in range(12) if n != 5]
    kept = await db(AdtMessage.objects.get)(control_id="PIPE-5")
    assert kept.outcome == "refused"
