"""The weekly review's marks over HTTP: members see a week's marks, heads set and clear
them, idempotently, each change audited; every refusal leaves no row and no entry."""

import pytest

from audit.models import AuditEvent
from media.models import ReviewMark
from tests.support import Api, Hospital, assert_refused

pytestmark = pytest.mark.django_db

WEEK = "2026-W49"


def review(h: Hospital, week: str = WEEK, department: int | None = None) -> str:
    return f"/api/library/departments/{department or h.plastic.pk}/reviews/{week}"


def case(h: Hospital, patient: int | None = None, **kwargs) -> str:
    return f"{review(h, **kwargs)}/patients/{patient or h.patient.pk}"


def trail() -> list[tuple[str, str, dict]]:
    return list(
        AuditEvent.objects.filter(action__startswith="review.")
        .order_by("pk")
        .values_list("action", "object_id", "data")
    )


def test_a_head_marks_a_case_and_every_member_sees_it(hospital):
    h = hospital
    response = Api(h.head_carol).put(case(h), {})
    assert response.status_code == 200, response.content
    marks = response.json()
    assert marks["department"] == h.plastic.pk and marks["week"] == WEEK
    [mark] = marks["marks"]
    assert mark["patient"] == h.patient.pk
    assert mark["by"] == {
        "id": h.head_carol.pk,
        "username": "head_carol",
        "display_name": "Head Carol",
    }
    assert mark["at"].endswith("+00:00")
    assert Api(h.nurse_alice).get(review(h)).json() == marks
    # Another week, the same patient: not marked.
    assert Api(h.nurse_alice).get(review(h, "2026-W48")).json()["marks"] == []
    assert trail() == [("review.marked", str(h.patient.pk), {"week": WEEK})]


def test_marking_twice_keeps_the_first_mark_and_writes_once(hospital):
    h = hospital
    first = Api(h.head_carol).put(case(h), {}).json()
    again = Api(h.head_carol).put(case(h), {}).json()
    assert again == first
    assert ReviewMark.objects.count() == 1
    assert len(trail()) == 1


def test_a_head_unmarks_a_case_once(hospital):
    h = hospital
    Api(h.head_carol).put(case(h), {})
    response = Api(h.head_carol).delete(case(h))
    assert response.status_code == 200, response.content
    assert response.json()["marks"] == []
    assert Api(h.head_carol).delete(case(h)).json()["marks"] == []
    assert not ReviewMark.objects.exists()
    assert [action for action, *_ in trail()] == ["review.marked", "review.unmarked"]


@pytest.mark.parametrize("method", ["put", "delete"])
@pytest.mark.parametrize(
    ("who", "where", "status", "code"),
    [
        # A member sees the marks but does not set them.
        ("nurse_alice", {}, 403, "forbidden"),
        ("surgeon_bob", {}, 403, "forbidden"),
        # Outsiders, a removed member and an officer meet no such department.
        ("head_grace", {}, 404, "not_found"),
        ("intern_erin", {}, 404, "not_found"),
        ("compliance_dan", {}, 404, "not_found"),
        # A patient plastic surgery never saw (only vascular has a thread about Hugo).
        ("head_carol", {"patient": "other"}, 404, "not_found"),
        ("head_carol", {"patient": 999_999}, 404, "not_found"),
        ("head_carol", {"department": 999_999}, 404, "not_found"),
        # Not an ISO week.
        ("head_carol", {"week": "2026-W54"}, 400, "invalid_request"),
        ("head_carol", {"week": "2026-49"}, 400, "invalid_request"),
    ],
)
def test_refusals_change_nothing(hospital, method, who, where, status, code):
    h = hospital
    Api(h.head_carol).put(case(h), {})  # the case as it stands, for `delete` to clear
    before = (list(ReviewMark.objects.values_list("pk", "by_id", "at")), trail())
    if where.get("patient") == "other":
        where = {"patient": h.other_patient.pk}
    path = case(h, **where)
    response = Api(h.user(who)).put(path, {}) if method == "put" else Api(h.user(who)).delete(path)
    assert_refused(response, status, code)
    assert (list(ReviewMark.objects.values_list("pk", "by_id", "at")), trail()) == before


@pytest.mark.parametrize(
    ("who", "week", "status", "code"),
    [
        ("head_grace", WEEK, 404, "not_found"),
        ("intern_erin", WEEK, 404, "not_found"),
        ("compliance_dan", WEEK, 404, "not_found"),
        ("nurse_alice", "last week", 400, "invalid_request"),
    ],
)
def test_who_may_not_see_the_marks(hospital, who, week, status, code):
    h = hospital
    Api(h.head_carol).put(case(h), {})
    assert_refused(Api(h.user(who)).get(review(h, week)), status, code)


def test_a_head_of_another_department_cannot_mark_here_but_marks_her_own(hospital):
    h = hospital
    grace = Api(h.head_grace)
    assert grace.put(case(h, h.other_patient.pk, department=h.vascular.pk), {}).status_code == 200
    assert Api(h.head_carol).get(review(h)).json()["marks"] == []
    assert (
        Api(h.nurse_ines).get(review(h, department=h.vascular.pk)).json()["marks"][0]["patient"]
        == h.other_patient.pk
    )
