"""The colleague directory (`POST /api/people/search`, rooms/people.py).

A head finds a colleague by any word of their name, accents and case
ignored, and sees their name, their departments with their role, and their
key's fingerprint; never a username or anything else of their account. The
refusals by role are in tests/test_permissions.py; here: what is found, how
much, the hourly count, and what the audit trail keeps.
"""

import pytest

from accounts.models import IdentityKey, User
from audit.models import AuditEvent
from rooms import people
from tests.support import Api, Hospital, assert_refused, make_user

pytestmark = pytest.mark.django_db

SEARCH = "/api/people/search"


@pytest.fixture
def carol(hospital: Hospital) -> Api:
    return Api(hospital.head_carol)


def named(username: str, display: str, **fields) -> User:
    user = make_user(username, **fields)
    user.display_name = display
    user.save()
    return user


def found(api: Api, q: str) -> list[str]:
    response = api.post(SEARCH, {"q": q})
    assert response.status_code == 200, response.content
    return [p["display_name"] for p in response.json()["people"]]


def test_any_word_of_a_name_is_found_from_its_start_accents_and_case_ignored(carol):
    named("nurse_helene", "Hélène Lefèvre-Dupré, RN")
    named("nurse_leo", "Léo Martin")
    for q in ("hélène", "HELENE", "hel", "lefe", "dupre", "Lefèvre-Dup", "rn", "hel lef"):
        assert found(carol, q) == ["Hélène Lefèvre-Dupré, RN"], q
    assert found(carol, "ene") == [], "the middle of a word is not its start"
    assert found(carol, "hel martin") == [], "every word typed must match"
    # By folded name: " helene lefevre…" before " leo martin".
    assert found(carol, "le") == ["Hélène Lefèvre-Dupré, RN", "Léo Martin"]


def test_a_result_is_a_name_departments_with_roles_and_a_fingerprint(hospital, carol):
    h = hospital
    response = carol.post(SEARCH, {"q": "ines"})
    assert response.status_code == 200, response.content
    (ines,) = response.json()["people"]
    key = IdentityKey.objects.get(user=h.nurse_ines, replaced_at=None)
    assert ines == {
        "id": h.nurse_ines.pk,
        "display_name": h.nurse_ines.label,
        "departments": [{"id": h.vascular.pk, "name": "Vascular surgery", "role": "member"}],
        "fingerprint": key.fingerprint,
    }
    assert "nurse_ines" not in response.content.decode(), "no username"
    (grace,) = carol.post(SEARCH, {"q": "grace"}).json()["people"]
    assert grace["departments"] == [
        {"id": h.vascular.pk, "name": "Vascular surgery", "role": "head"}
    ]


def test_a_colleague_without_keys_or_department_is_found_with_neither(carol):
    newcomer = named("intern_noe", "Noé Garnier", email="noe@example.org")
    (person,) = carol.post(SEARCH, {"q": "garnier"}).json()["people"]
    assert person == {
        "id": newcomer.pk,
        "display_name": "Noé Garnier",
        "departments": [],
        "fingerprint": None,
    }


def test_an_inactive_account_and_a_login_are_not_found(carol):
    named("nurse_gone", "Gaston Left", is_active=False)
    assert found(carol, "gaston") == []
    # The username is not a name: "head_carol" finds nobody by its login.
    assert found(carol, "head_carol") == []


def test_at_most_twenty_and_more_says_so(carol):
    for i in range(people.RESULTS + 1):
        named(f"locum_{i:02}", f"Locum Doctor {i:02}")
    body = carol.post(SEARCH, {"q": "locum"}).json()
    assert len(body["people"]) == people.RESULTS
    assert body["more"] is True
    assert carol.post(SEARCH, {"q": "locum doctor 20"}).json() == {
        "people": [
            {
                "id": User.objects.get(username="locum_20").pk,
                "display_name": "Locum Doctor 20",
                "departments": [],
                "fingerprint": None,
            }
        ],
        "more": False,
    }


@pytest.mark.parametrize("q", ["", "b", " b ", "-", "é"])
def test_fewer_than_two_letters_is_refused_and_not_counted(carol, q):
    assert_refused(carol.post(SEARCH, {"q": q}), 400, "invalid_request")
    assert not AuditEvent.objects.filter(action="people.searched").exists()


def test_a_search_over_a_hundred_characters_is_refused(carol):
    assert_refused(carol.post(SEARCH, {"q": "a" * 101}), 400, "invalid_request")


def test_every_search_is_audited_with_counts_never_the_words(hospital, carol):
    carol.post(SEARCH, {"q": "Surgeon Bob"})
    (entry,) = AuditEvent.objects.filter(action="people.searched")
    assert entry.actor_id == hospital.head_carol.pk
    assert entry.data == {"words": 2, "results": 1, "more": False}
    assert "bob" not in str(entry.record()).lower()


def test_searches_are_counted_per_hour(hospital, carol, settings):
    settings.ROUNDS_PEOPLE_SEARCHES_PER_HOUR = 3
    for _ in range(3):
        assert carol.post(SEARCH, {"q": "bob"}).status_code == 200
    body = assert_refused(carol.post(SEARCH, {"q": "bob"}), 429, "rate_limited")
    assert body["data"] == {"per_hour": 3}
    assert AuditEvent.objects.filter(action="people.searched").count() == 3
    # Another head's hour is their own.
    assert Api(hospital.head_grace).post(SEARCH, {"q": "bob"}).status_code == 200
