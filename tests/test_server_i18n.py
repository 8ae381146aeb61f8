"""The server speaks French and English (docs/i18n.md, "The server").

A refusal is raised with its English msgid and translated once, at the edge that
answers: an HTTP response in the request's language (the `rounds_language` cookie,
else Accept-Language, else English), an error frame in the language the socket's
handshake chose. The French catalogue is complete, and the compiled .mo kept in the
repository says what the .po says.
"""

import ast
import gettext
import re
from datetime import date
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone, translation

from core.errors import N_, ErrorCode, NotFound, RoundsError
from rounds.i18n import error_body, scope_language
from tests.support.api import assert_refused, issue_token
from tests.support.po import Entry, parse_po
from tests.support.sockets import ORIGIN, recv, token_for

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
SERVER = ["accounts", "audit", "chat", "compliance", "core", "media"]
SERVER += ["patients", "retention", "rooms", "rounds"]
NBSP = "\u00a0"

MISSING_THREAD = "/api/threads/999999/messages"


def get(user, path: str, **headers: str):
    client = Client()
    cookie = headers.pop("cookie", None)
    if cookie is not None:
        client.cookies["rounds_language"] = cookie
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {issue_token(user)}", **headers)


# --- HTTP -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refusal_is_in_french_when_the_browser_asks_for_it(hospital):
    response = get(hospital.nurse_alice, MISSING_THREAD, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    body = assert_refused(response, 404, "not_found")
    assert body["message"] == "Conversation introuvable."
    assert response["Content-Language"] == "fr"


@pytest.mark.django_db
def test_the_language_cookie_overrides_accept_language(hospital):
    response = get(hospital.nurse_alice, MISSING_THREAD, HTTP_ACCEPT_LANGUAGE="en", cookie="fr")
    assert assert_refused(response, 404, "not_found")["message"] == "Conversation introuvable."
    response = get(hospital.nurse_alice, MISSING_THREAD, HTTP_ACCEPT_LANGUAGE="fr", cookie="en")
    assert assert_refused(response, 404, "not_found")["message"] == "Thread not found."


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [None, "de-DE,de;q=0.9", "en-GB,en;q=0.8"])
def test_english_is_the_default(hospital, accept):
    headers = {} if accept is None else {"HTTP_ACCEPT_LANGUAGE": accept}
    response = get(hospital.nurse_alice, MISSING_THREAD, **headers)
    assert assert_refused(response, 404, "not_found")["message"] == "Thread not found."


@pytest.mark.django_db
@pytest.mark.parametrize("cookie", ["klingon", "../../etc/passwd", 'fr"><script>', "x" * 4000])
def test_a_forged_language_cookie_falls_back_to_the_browsers_language(hospital, cookie):
    """The cookie is the browser's to write, so anyone's: an unknown or hostile value is
    ignored (Accept-Language decides), never echoed, never an error."""
    response = get(hospital.nurse_alice, MISSING_THREAD, HTTP_ACCEPT_LANGUAGE="fr", cookie=cookie)
    body = assert_refused(response, 404, "not_found")
    assert body["message"] == "Conversation introuvable." and cookie not in response.text
    response = get(hospital.nurse_alice, MISSING_THREAD, cookie=cookie)
    assert assert_refused(response, 404, "not_found")["message"] == "Thread not found."


@pytest.mark.django_db
def test_a_parametrised_refusal_is_formatted_after_translation(hospital):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issue_token(hospital.head_carol)}")
    response = client.post(
        "/api/people/search",
        {"q": "x" * 101},
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    body = assert_refused(response, 400, "invalid_request")
    assert body["message"] == "Une recherche compte au plus 100 caractères."


@pytest.mark.django_db
def test_sign_in_first_is_translated_too():
    response = Client().get("/api/departments", HTTP_ACCEPT_LANGUAGE="fr")
    body = assert_refused(response, 401, "not_authenticated")
    assert body["message"] == "Connectez-vous d\u2019abord."


# --- Texts the server builds ----------------------------------------------------------


def report_entries(h, case, **headers: str) -> list[dict]:
    from tests.support.cases import report_path

    response = get(h.compliance_dan, report_path(case, h.patient), **headers)
    assert response.status_code == 200, response.content
    return response.json()["entries"]


def what_of(entries: list[dict], action: str) -> list[str]:
    return [e["what"] for e in entries if e["action"] == action]


@pytest.fixture
def reported(hospital):
    """A case on Léa: Bob read her thread and made two follow-up photo reports."""
    from chat.actions import check_history
    from media.library import check_record_report
    from tests.support.cases import open_case

    check_history(hospital.surgeon_bob, hospital.thread.pk, None, 50)
    check_record_report(hospital.surgeon_bob, hospital.patient.pk, 1)
    check_record_report(hospital.surgeon_bob, hospital.patient.pk, 3)
    return open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)


@pytest.mark.django_db
def test_the_access_report_speaks_the_request_language(hospital, reported):
    h, thread = hospital, hospital.thread
    english = report_entries(h, reported, HTTP_ACCEPT_LANGUAGE="de")
    assert what_of(english, "report.generated") == [
        "made a follow-up photo report (1 photo)",
        "made a follow-up photo report (3 photos)",
    ]
    assert what_of(english, "thread.created") == ["created the thread"]
    assert what_of(english, "case.opened") == ["opened a compliance case on the patient"]
    labels = {(e["object"]["type"], e["object"]["label"]) for e in english}
    assert ("thread", f"thread {thread.pk} «Wound follow-up»") in labels
    assert ("patient", "the patient's record") in labels
    for french in (
        report_entries(h, reported, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9"),
        report_entries(h, reported, HTTP_ACCEPT_LANGUAGE="en", cookie="fr"),
    ):
        assert what_of(french, "report.generated") == [
            "a établi un compte rendu de suivi photographique (1 photo)",
            "a établi un compte rendu de suivi photographique (3 photos)",
        ]
        assert what_of(french, "thread.created") == ["a créé la conversation"]
        assert what_of(french, "case.opened") == [
            "a ouvert un dossier de conformité sur le patient"
        ]
        assert what_of(french, "case.released")[0] == (
            f"a communiqué au titre d\u2019un dossier{NBSP}: le rapport des accès du patient"
        )
        labels = {(e["object"]["type"], e["object"]["label"]) for e in french}
        # The title is the thread's own, as written: data, never translated.
        assert ("thread", f"conversation {thread.pk} «{NBSP}Wound follow-up{NBSP}»") in labels
        assert ("patient", "le dossier du patient") in labels
        # Only the words change: the machine fields are the same in either language (each
        # request adds its own release to the end).
        same = [e for e in french if e["id"] <= english[-1]["id"]]
        assert [(e["id"], e["action"], e["certainty"], e["seal"]) for e in same] == [
            (e["id"], e["action"], e["certainty"], e["seal"]) for e in english
        ]


@pytest.mark.django_db
def test_a_streamed_export_keeps_the_language_its_request_chose(hospital, reported):
    from tests.support.cases import report_path

    path = report_path(reported, hospital.patient, "format=csv")
    response = get(hospital.compliance_dan, path, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 200
    # The rows are read as the file is sent, past the request: in French all the same.
    with translation.override("en"):
        text = b"".join(response.streaming_content).decode()
    assert "a établi un compte rendu de suivi photographique (3 photos)" in text
    assert "made a follow-up" not in text
    assert text.rstrip().endswith("entrées")


@pytest.mark.django_db
def test_the_retention_rule_speaks_the_request_language(hospital):
    from patients.models import Admission

    path = f"/api/patients/{hospital.patient.pk}"

    def rule(**headers: str) -> str:
        response = get(hospital.surgeon_bob, path, **headers)
        assert response.status_code == 200, response.content
        return response.json()["retention"]["rule"]

    assert rule() == "kept while the patient's stay lasts"
    assert rule(HTTP_ACCEPT_LANGUAGE="fr") == "conservation tant que dure le séjour du patient"
    Admission.objects.filter(patient=hospital.patient).update(discharged_at=timezone.now())
    assert rule() == "20 years after the last stay or consultation (R.1112-7)"
    assert rule(cookie="fr") == (
        "20 ans après le dernier séjour ou la dernière consultation (R.1112-7)"
    )


def test_every_retention_rule_has_its_french():
    from patients.retention import retained_until

    cases = [
        (None, date(1960, 5, 1), "20 ans après le dernier séjour"),
        (None, date(2020, 7, 14), "jusqu\u2019au 28e anniversaire du patient, postérieur"),
        (
            date(2027, 6, 2),
            date(1940, 1, 1),
            "10 ans après le décès du patient, survenu moins de 10 ans",
        ),
    ]
    for died_on, born, french in cases:
        with translation.override("fr"):
            assert retained_until(date(2026, 3, 10), born, died_on)[1].startswith(french)
        with translation.override("en"):
            english = retained_until(date(2026, 3, 10), born, died_on)[1]
        assert english.endswith("(R.1112-7)") and " years after " in english


# --- The one place that translates ---------------------------------------------------


def test_an_error_keeps_its_english_and_is_translated_at_the_edge():
    error = RoundsError(
        N_("Frames are limited to %(limit)s bytes."),
        code=ErrorCode.FRAME_TOO_LARGE,
        data={"max_frame_bytes": 10},
        params={"limit": 10},
    )
    assert error.message == "Frames are limited to 10 bytes."
    assert error.as_dict()["message"] == "Frames are limited to 10 bytes."
    with translation.override("fr"):
        assert error_body(error) == {
            "code": "frame_too_large",
            "message": "Les trames sont limitées à 10 octets.",
            "data": {"max_frame_bytes": 10},
        }
        assert error_body(NotFound())["message"] == "Introuvable."
    with translation.override("en"):
        assert error_body(error)["message"] == "Frames are limited to 10 bytes."


@pytest.mark.parametrize(
    ("cookie", "accept", "language"),
    [
        (None, None, "en"),
        (None, b"fr-CA,fr;q=0.9,en;q=0.5", "fr"),
        (None, b"de,it;q=0.5", "en"),
        ("fr", None, "fr"),
        ("en", b"fr", "en"),
        ("klingon", b"fr", "fr"),
    ],
)
def test_the_handshake_chooses_the_socket_language(cookie, accept, language):
    headers = [] if accept is None else [(b"accept-language", accept)]
    cookies = {} if cookie is None else {"rounds_language": cookie}
    assert scope_language({"headers": headers, "cookies": cookies}) == language


# --- The socket -------------------------------------------------------------------


async def socket_with(token: str, *headers: tuple[bytes, bytes]):
    from channels.testing import WebsocketCommunicator

    from rounds.asgi import application

    all_headers = [(b"origin", ORIGIN), (b"authorization", f"Bearer {token}".encode())]
    communicator = WebsocketCommunicator(application, "/ws/", headers=[*all_headers, *headers])
    connected, _ = await communicator.connect()
    assert connected
    assert (await recv(communicator))["type"] == "hello"
    return communicator


@pytest.mark.django_db(transaction=True)
async def test_an_error_frame_speaks_the_language_of_the_handshake(live_hospital):
    token = await token_for(live_hospital.nurse_alice)
    french = await socket_with(
        token, (b"cookie", b"rounds_language=fr"), (b"accept-language", b"en")
    )
    english = await socket_with(token, (b"accept-language", b"en-GB"))
    for socket, message in [
        (french, "Les trames doivent être des objets JSON."),
        (english, "Frames must be JSON objects."),
    ]:
        await socket.send_to(text_data="[1, 2]")
        frame = await recv(socket)
        assert (frame["type"], frame["code"]) == ("error", "invalid_frame")
        assert frame["message"] == message
    # A parametrised refusal, formatted after translation.
    await french.send_to(text_data="x" * (64 * 1024 + 1))
    frame = await recv(french)
    assert frame["code"] == "frame_too_large"
    assert frame["message"] == f"Les trames sont limitées à {64 * 1024} octets."
    await french.disconnect()
    await english.disconnect()


# --- The catalogue ----------------------------------------------------------------


def test_the_po_reader_reads_what_it_must():
    entries, obsolete = parse_po(
        '#: a.py:1\n#, fuzzy, python-format\nmsgid ""\n"Two %(n)s "\n"lines"\n'
        'msgstr "Deux %(n)s lignes"\n\n'
        'msgid "one"\nmsgid_plural "many"\nmsgstr[0] "un"\nmsgstr[1] ""\n"plusieurs"\n\n'
        '#~ msgid "gone"\n#~ msgstr "parti"\n'
    )
    assert entries == [
        Entry(flags={"fuzzy", "python-format"}, msgid="Two %(n)s lines",
              msgstr={0: "Deux %(n)s lignes"}),
        Entry(msgid="one", msgid_plural="many", msgstr={0: "un", 1: "plusieurs"}),
    ]  # fmt: skip
    assert obsolete == ['#~ msgid "gone"', '#~ msgstr "parti"']


CATALOGUE = parse_po(PO.read_text(encoding="utf-8")).entries
ENTRIES = [e for e in CATALOGUE if e.msgid]


def test_every_french_entry_is_translated_and_none_is_fuzzy():
    assert len(ENTRIES) > 150
    fuzzy = [e.msgid for e in ENTRIES if "fuzzy" in e.flags]
    empty = [e.msgid for e in ENTRIES if not all(e.msgstr.values())]
    assert (fuzzy, empty) == ([], [])
    header = CATALOGUE[0]
    assert "fuzzy" not in header.flags


def placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%\(\w+\)s", text))


def test_each_translation_keeps_the_placeholders_and_french_spacing():
    for entry in ENTRIES:
        for text in entry.msgstr.values():
            assert placeholders(text) == placeholders(entry.msgid), entry
            # A no-break space before : ; ? ! (French typography), never a plain one.
            assert not re.search(r" [:;?!»]|« ", text), entry
            assert not re.search(r"[^\s\u00a0(][;?!»]|[^\s\u00a0]:\s", text), entry


def test_the_mo_in_the_repository_says_what_the_po_says():
    """Compiled by `make messages` and kept beside the .po: a .po edited without
    compiling again (or the other way round) fails here."""
    with MO.open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    stale = []
    for entry in ENTRIES:
        msgid, plural, forms = entry.msgid, entry.msgid_plural, entry.msgstr
        if plural is not None:
            got = {0: catalogue.ngettext(msgid, plural, 1), 1: catalogue.ngettext(msgid, plural, 2)}
        else:
            got = {0: catalogue.gettext(msgid)}
        if got != forms:
            stale.append((msgid, forms, got))
    assert stale == []
    # ...and nothing more: an entry removed from the .po is gone from the .mo too.
    assert len(catalogue._catalog) - 1 == sum(len(e.msgstr) for e in ENTRIES)  # type: ignore[attr-defined]


def marked_messages() -> set[str]:
    """Every literal the server marks for translation: N_("…") (core's no-op marker)
    and Django's gettext family, as makemessages finds them."""
    names = {"N_", "_", "gettext", "gettext_noop", "gettext_lazy", "ngettext"}
    found = set()
    for package in SERVER:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                first = node.args[0]
                if name in names and isinstance(first, ast.Constant):
                    found.add(first.value)
    return found


def test_every_marked_message_is_in_the_catalogue():
    known = {e.msgid for e in ENTRIES}
    marked = marked_messages()
    assert "Frames are limited to %(limit)s bytes." in marked  # the scan finds them
    assert sorted(marked - known) == []


def test_nbsp_is_what_the_catalogue_uses():
    assert any(NBSP + ":" in t for e in ENTRIES for t in e.msgstr.values())
