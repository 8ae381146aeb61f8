"""The photo library over HTTP: filters, keyset pages, sequences, statistics and reports,
each seen only through the caller's departments and each audited."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from chat.actions import do_create_thread
from chat.models import Thread
from media.models import Keyword
from tests.support import Api, Hospital
from tests.support.cases import case_header, open_case
from tests.support.uploads import photo, post_photos

pytestmark = pytest.mark.django_db

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class Library:
    h: Hospital
    hugo_thread: Thread
    messages: dict[str, int]  # "m1".. → message id


def at(day: int, hour: int = 10) -> str:
    return f"2026-10-{day:02d}T{hour:02d}:00:00+00:00"


@pytest.fixture
def library(hospital: Hospital) -> Library:
    """Plastic: Léa M1 (bob, 2 photos), M2 (alice, 1), M3 (bob, 3 at one instant);
    Hugo M4 (carol, 1). Vascular: Hugo M5 (ines, 2)."""
    h = hospital
    hugo = do_create_thread(h.head_carol, h.plastic.pk, h.other_patient.pk, "Hugo, hand")
    hugo_thread = Thread.objects.get(pk=hugo["id"])

    def refs(who: str, count: int, day: int, keywords: tuple, consent: str, department=None):
        return [
            photo(h, who, department, keywords=keywords, consent=consent, captured_at=at(day))
            for _ in range(count)
        ]

    hand_pre, hand_post = ("hand", "pre-operative"), ("hand", "post-operative")
    posts = {
        "m1": ("surgeon_bob", refs("surgeon_bob", 2, 1, hand_pre, "care"), None),
        "m2": ("nurse_alice", refs("nurse_alice", 1, 5, hand_post, "teaching"), None),
        "m3": ("surgeon_bob", refs("surgeon_bob", 3, 10, ("face",), "publication"), None),
        "m4": ("head_carol", refs("head_carol", 1, 7, ("hand",), "care"), hugo_thread),
        "m5": (
            "nurse_ines",
            refs("nurse_ines", 2, 6, ("foot", "pressure-ulcer"), "care", h.vascular),
            h.vascular_thread,
        ),
    }
    messages = {}
    for name, (who, photos, thread) in posts.items():
        ack, _ = post_photos(h, who, photos, thread=thread)
        messages[name] = ack["message_id"]
    return Library(h, hugo_thread, messages)


def get(user: Any, path: str, case: Any = None, **params: Any):
    """A library read; `case` in its X-Rounds-Case header, `params` in the URL."""
    headers = {} if case is None else case_header(case)
    return Api(user).get(f"/api/library/{path}?{urlencode(params, doseq=True)}", **headers)


def photos(user: Any, **params: Any) -> list[dict[str, Any]]:
    response = get(user, "photos", **params)
    assert response.status_code == 200, response.content
    return response.json()["items"]


def messages_of(items: list[dict[str, Any]]) -> list[int]:
    return [item["message"]["id"] for item in items]


def last_query() -> AuditEvent:
    return AuditEvent.objects.filter(action="library.query").latest("id")


def test_the_keywords_are_the_active_nomenclature(hospital: Hospital):
    response = Api(hospital.nurse_alice).get("/api/library/keywords")
    assert response.status_code == 200
    terms = response.json()
    assert len(terms) == 26
    assert {"code": "hand", "label": "Hand", "category": "site"} in terms
    Keyword.objects.filter(code="hand").update(active=False)
    assert len(Api(hospital.nurse_alice).get("/api/library/keywords").json()) == 25


def test_an_item_carries_the_photo_its_patient_and_its_message(library: Library):
    h = library.h
    items = photos(h.nurse_alice, sender=h.nurse_alice.pk)
    (item,) = items
    assert item["message"]["id"] == library.messages["m2"]
    assert item["message"]["envelope"]["ciphertext"]
    assert item["message"]["attachments"][0]["id"] == item["id"]
    assert item["patient"] == {
        "id": h.patient.pk,
        "ipp": "00800100",
        "family_name": "Lefèvre",
        "given_name": "Léa",
        "birth_date": "1985-01-30",
    }
    assert item["sender"] == {
        "id": h.nurse_alice.pk,
        "username": "nurse_alice",
        "display_name": h.nurse_alice.label,
    }
    assert (item["department"], item["thread"]) == (h.plastic.pk, h.thread.pk)
    assert item["department_name"] == h.plastic.name
    assert item["sender"]["display_name"] != "nurse_alice"
    # Every page names the institution's zone, the one clients show capture times in.
    assert get(h.nurse_alice, "photos").json()["time_zone"] == "Europe/Paris"
    assert item["keywords"] == ["hand", "post-operative"]
    assert (item["consent"], item["captured_at"]) == ("teaching", at(5))
    assert item["upload"] and item["thumbnail"] and item["annotates"] is None


def test_each_filter_narrows_the_photos(library: Library):
    h, m = library.h, library.messages
    bob = h.surgeon_bob
    assert sorted(set(messages_of(photos(bob)))) == sorted([m["m1"], m["m2"], m["m3"], m["m4"]])
    assert len(photos(bob)) == 7
    assert len(photos(bob, patient=h.patient.pk)) == 6
    assert messages_of(photos(bob, ipp="00800107")) == [m["m4"]]
    assert photos(bob, ipp="99999999") == []
    assert len(photos(bob, department=h.plastic.pk)) == 7
    assert messages_of(photos(bob, sender=h.head_carol.pk)) == [m["m4"]]
    assert set(messages_of(photos(bob, consent="publication"))) == {m["m3"]}
    assert len(photos(bob, keyword="hand")) == 4
    # Keywords combine with AND.
    assert messages_of(photos(bob, keyword=["hand", "pre-operative"])) == [m["m1"], m["m1"]]
    assert photos(bob, keyword=["hand", "face"]) == []
    # Dates are whole days, in either order of precision; a date and time is that instant.
    assert messages_of(photos(bob, date_from="2026-10-05", date_to="2026-10-07")) == [
        m["m4"],
        m["m2"],
    ]
    assert len(photos(bob, date_to=at(5))) == 3
    assert len(photos(bob, date_from="2026-10-05T11:00:00+00:00")) == 4
    # Combined.
    assert messages_of(photos(bob, patient=h.patient.pk, keyword="hand", consent="care")) == [
        m["m1"],
        m["m1"],
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"consent": "research"},
        {"date_from": "yesterday"},
        {"date_to": "2026-10-05T10:00:00"},  # a time without offset
        {"limit": 0},
        {"limit": 201},
    ],
)
def test_a_bad_filter_is_an_invalid_request(library: Library, params: dict):
    response = get(library.h.surgeon_bob, "photos", **params)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_pages_follow_the_capture_date_and_stay_stable(library: Library):
    h = library.h
    everything = photos(h.surgeon_bob, limit=200)
    keys = [(item["captured_at"], item["id"]) for item in everything]
    assert keys == sorted(keys, reverse=True)  # newest capture first, ties by id
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = get(h.surgeon_bob, "photos", **params)
        body = response.json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        if pages == 1:
            # A photo posted meanwhile, newest of all, does not shift the pages that follow.
            post_photos(h, "surgeon_bob", [photo(h, "surgeon_bob", captured_at=at(30))])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [item["id"] for item in everything]
    response = get(h.surgeon_bob, "photos", cursor="not-a-cursor")
    assert (response.status_code, response.json()["code"]) == (400, "cursor_invalid")


def test_each_role_sees_its_own_departments_only(library: Library):
    h = library.h
    for member in (h.head_carol, h.surgeon_bob, h.nurse_alice):
        items = photos(member)
        assert {item["department"] for item in items} == {h.plastic.pk}
        assert len(items) == 7
    assert photos(h.intern_erin) == []  # removed: nothing, not even through a filter
    assert photos(h.intern_erin, patient=h.patient.pk) == []
    ines = photos(h.nurse_ines)
    assert messages_of(ines) == [library.messages["m5"]] * 2
    assert photos(h.nurse_ines, patient=h.patient.pk) == []
    for who, department in ((h.nurse_ines, h.plastic), (h.surgeon_bob, h.vascular)):
        response = get(who, "photos", department=department.pk)
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert get(h.surgeon_bob, "photos", department=10**6).status_code == 404


def everything(h: Hospital) -> dict[str, int]:
    """The `case` (sent as its header) of a case of compliance_dan's covering every thread."""
    return {"case": open_case(h.compliance_dan, "INC-ALL", date_from=EPOCH).pk}


def test_compliance_sees_what_an_open_case_covers(library: Library):
    h = library.h
    dan = h.compliance_dan
    for params, code in (({}, 400), ({"case": "INC-1"}, 400), ({"case": 10**6}, 404)):
        response = get(dan, "photos", **params)
        assert response.status_code == code, response.content
    case = everything(h)
    items = photos(dan, **case)
    assert len(items) == 9
    assert {item["department"] for item in items} == {h.plastic.pk, h.vascular.pk}
    assert last_query().data["case"] == case["case"]
    released = AuditEvent.objects.filter(action="case.released").latest("id")
    assert released.data["what"] == "library.photos"
    assert len(photos(dan, department=h.vascular.pk, **case)) == 2
    response = get(dan, "photos", department=10**6, **case)
    assert response.status_code == 404
    # A case on Léa shows her photos only, and no department without her threads.
    lea = open_case(dan, "INC-LEA", patient_id=h.patient.pk)
    assert {item["patient"]["id"] for item in photos(dan, case=lea.pk)} == {h.patient.pk}
    assert get(dan, "photos", case=lea.pk, department=h.vascular.pk).status_code == 404
    # A clinician names no case.
    refused = get(h.nurse_alice, "photos", **case)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")


@pytest.mark.parametrize(
    "path",
    ["photos", "patients/{patient}/sequences", "departments/{department}/stats"],
)
def test_a_case_in_the_query_string_is_refused_before_anything_is_read(library: Library, path: str):
    """Access logs keep URLs: a case there would tie the officer to the patient in them."""
    h = library.h
    case = everything(h)["case"]
    url = "/api/library/" + path.format(patient=h.patient.pk, department=h.plastic.pk)
    dan = Api(h.compliance_dan)
    before = AuditEvent.objects.count()
    for headers in ({}, case_header(case)):
        refused = dan.get(f"{url}?case={case}", **headers)
        assert refused.status_code == 400, refused.content
        assert refused.json()["code"] == "invalid_request"
        assert "X-Rounds-Case" in refused.json()["message"]
    assert AuditEvent.objects.count() == before  # nothing released, nothing queried
    assert dan.get(url, **case_header(case)).status_code == 200
    assert AuditEvent.objects.filter(action="case.released").count() == 1


def test_every_query_is_audited_with_its_filters_and_count_never_a_name(library: Library):
    h = library.h
    before = AuditEvent.objects.filter(action="library.query").count()
    photos(h.surgeon_bob, ipp="00800100", keyword="hand", date_from="2026-10-01")
    entry = last_query()
    assert entry.actor_id == h.surgeon_bob.pk
    assert entry.data["filters"] == ["date_from", "ipp", "keyword"]
    assert entry.data["count"] == 3
    assert entry.data["patient_id"] == h.patient.pk
    assert entry.data["keywords"] == ["hand"]
    text = json.dumps(entry.data, ensure_ascii=False)
    assert "00800100" not in text and "Lefèvre" not in text and "Léa" not in text
    get(h.surgeon_bob, f"patients/{h.patient.pk}/sequences")
    assert last_query().data | {} == {
        "query": "sequences",
        "filters": ["patient"],
        "count": 3,
        "patient_id": h.patient.pk,
    }
    get(h.surgeon_bob, f"departments/{h.plastic.pk}/stats")
    assert last_query().object_id == "stats" and last_query().department_id == h.plastic.pk
    assert AuditEvent.objects.filter(action="library.query").count() == before + 3


def test_a_patients_sequences_are_the_photos_of_each_message(library: Library):
    h, m = library.h, library.messages
    response = get(h.surgeon_bob, f"patients/{h.patient.pk}/sequences")
    assert response.status_code == 200
    body = response.json()
    assert body["patient"] == h.patient.pk
    sequences = body["sequences"]
    assert [s["message"] for s in sequences] == [m["m3"], m["m2"], m["m1"]]
    first = sequences[-1]
    assert first == {
        "message": m["m1"],
        "thread": h.thread.pk,
        "department": h.plastic.pk,
        "sender": {"id": h.surgeon_bob.pk, "username": "surgeon_bob"},
        "captured_from": at(1),
        "captured_to": at(1),
        "photos": 2,
        "keywords": ["hand", "pre-operative"],
    }
    assert [s["photos"] for s in sequences] == [3, 1, 2]
    # Hugo has photos in both departments; each caller sees their own.
    hugo = h.other_patient.pk
    bobs = get(h.surgeon_bob, f"patients/{hugo}/sequences").json()["sequences"]
    assert [s["message"] for s in bobs] == [m["m4"]]
    ines = get(h.nurse_ines, f"patients/{hugo}/sequences").json()["sequences"]
    assert [s["message"] for s in ines] == [m["m5"]]
    # A patient with no thread in the caller's departments does not exist for them.
    for who in (h.nurse_ines, h.intern_erin):
        response = get(who, f"patients/{h.patient.pk}/sequences")
        assert response.status_code == 404
    assert get(h.surgeon_bob, "patients/999999/sequences").status_code == 404
    assert get(h.compliance_dan, f"patients/{hugo}/sequences").status_code == 400
    complete = get(h.compliance_dan, f"patients/{hugo}/sequences", **everything(h)).json()
    assert [s["message"] for s in complete["sequences"]] == [m["m4"], m["m5"]]
    lea = open_case(h.compliance_dan, "INC-LEA", patient_id=h.patient.pk)
    assert get(h.compliance_dan, f"patients/{hugo}/sequences", case=lea.pk).status_code == 404


def test_department_statistics_match_the_known_data_set(library: Library):
    h = library.h
    response = get(h.head_carol, f"departments/{h.plastic.pk}/stats")
    assert response.status_code == 200
    assert response.json() | {} == {
        "department": h.plastic.pk,
        "date_from": None,
        "date_to": None,
        "patients": 2,
        "sequences": 4,
        "photos": 7,
        "annotations": 0,
        "mean_sequences_per_patient": 2.0,
    }
    week = get(
        h.head_carol,
        f"departments/{h.plastic.pk}/stats",
        date_from="2026-10-05",
        date_to="2026-10-07",
    ).json()
    assert (week["patients"], week["sequences"], week["photos"]) == (2, 2, 2)
    assert week["mean_sequences_per_patient"] == 1.0
    vascular = get(h.head_grace, f"departments/{h.vascular.pk}/stats").json()
    assert (vascular["patients"], vascular["sequences"], vascular["photos"]) == (1, 1, 2)
    empty = get(h.head_carol, f"departments/{h.plastic.pk}/stats", date_from="2027-01-01")
    assert empty.json()["mean_sequences_per_patient"] == 0.0
    assert get(h.nurse_ines, f"departments/{h.plastic.pk}/stats").status_code == 404
    assert get(h.intern_erin, f"departments/{h.plastic.pk}/stats").status_code == 404
    dan = get(h.compliance_dan, f"departments/{h.vascular.pk}/stats", **everything(h))
    assert dan.json()["photos"] == 2


def test_an_annotation_is_counted_apart_from_photos(library: Library):
    h = library.h
    original = photos(h.nurse_alice, sender=h.nurse_alice.pk)[0]["id"]
    post_photos(h, "nurse_alice", [photo(h, "nurse_alice", annotates=original)])
    stats = get(h.head_carol, f"departments/{h.plastic.pk}/stats").json()
    assert (stats["photos"], stats["annotations"], stats["sequences"]) == (7, 1, 5)
    overlay = photos(h.head_carol, limit=1)[0]
    assert overlay["annotates"] == original


def test_a_generated_report_is_audited_for_visible_patients_only(library: Library):
    h = library.h
    api = Api(h.surgeon_bob)
    response = api.post("/api/library/reports", {"patient": h.patient.pk, "photos": 6})
    assert response.status_code == 201, response.content
    assert response.json()["photos"] == 6
    entry = AuditEvent.objects.filter(action="report.generated").latest("id")
    assert (entry.actor_id, entry.object_type, entry.object_id) == (
        h.surgeon_bob.pk,
        "patient",
        str(h.patient.pk),
    )
    assert entry.data == {"photos": 6}
    refused = Api(h.nurse_ines).post("/api/library/reports", {"patient": h.patient.pk, "photos": 1})
    assert refused.status_code == 404
    assert (
        api.post("/api/library/reports", {"patient": h.patient.pk, "photos": 0}).status_code == 400
    )
    dan = Api(h.compliance_dan)
    assert (
        dan.post("/api/library/reports", {"patient": h.patient.pk, "photos": 1}).status_code == 400
    )
    case = everything(h)
    done = dan.post("/api/library/reports", {"patient": h.patient.pk, "photos": 1, **case})
    assert done.status_code == 201
    entry = AuditEvent.objects.filter(action="report.generated").latest("id")
    assert entry.data == {"photos": 1, "case": case["case"]}


def test_load_keywords_upserts_and_deactivates_never_deletes(library: Library, tmp_path):
    terms = [
        {"code": "hand", "label": "Hand and wrist", "category": "site"},
        {"code": "face", "label": "Face", "category": "site"},
        {"code": "skin-graft", "label": "Skin graft", "category": "context"},
    ]
    path = tmp_path / "keywords.json"
    path.write_text(json.dumps(terms))
    call_command("load_keywords", str(path))
    active = dict(Keyword.objects.filter(active=True).values_list("code", "label"))
    assert active == {"hand": "Hand and wrist", "face": "Face", "skin-graft": "Skin graft"}
    assert Keyword.objects.count() == 27  # 26 defaults + 1: none deleted
    # Photos keep their retired keywords, and can still be found by them.
    assert len(photos(library.h.surgeon_bob, keyword="pre-operative")) == 2
    entry = AuditEvent.objects.filter(action="keywords.loaded").latest("id")
    assert entry.data == {"created": 1, "updated": 1, "unchanged": 1, "deactivated": 24}
    for bad in ([], [{"code": "x y", "label": "X", "category": "site"}], [terms[0], terms[0]]):
        path.write_text(json.dumps(bad))
        with pytest.raises(CommandError):
            call_command("load_keywords", str(path))
    path.write_text("not json")
    with pytest.raises(CommandError):
        call_command("load_keywords", str(path))
    assert Keyword.objects.filter(active=True).count() == 3
