"""What an administrator, who is a member of no department, may see to appoint first heads."""

import pytest
from django.test import Client

from tests.support import issue_token

pytestmark = pytest.mark.django_db


def get(user, path: str):
    headers = {} if user is None else {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user)}"}
    return Client().get(path, **headers)


def test_an_administrator_lists_every_department_with_its_heads(hospital):
    response = get(hospital.admin_zoe, "/api/departments?all=true")

    assert response.status_code == 200
    listed = {d["name"]: d for d in response.json()}
    assert set(listed) == {"Plastic surgery", "Vascular surgery"}
    assert [h["username"] for h in listed["Plastic surgery"]["heads"]] == ["head_carol"]
    assert [h["username"] for h in listed["Vascular surgery"]["heads"]] == ["head_grace"]
    assert listed["Plastic surgery"]["id"] == hospital.plastic.pk
    assert "role" not in listed["Plastic surgery"]


@pytest.mark.parametrize("who", ["head_carol", "nurse_alice", "compliance_dan"])
def test_anyone_else_is_refused_the_whole_list(hospital, who):
    response = get(hospital.user(who), "/api/departments?all=true")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_without_the_flag_an_administrator_sees_only_their_own(hospital):
    assert get(hospital.admin_zoe, "/api/departments").json() == []


def test_signing_in_first_is_required(hospital):
    assert get(None, "/api/departments?all=true").status_code == 401


def test_an_administrator_reads_a_departments_statements(hospital):
    response = get(hospital.admin_zoe, f"/api/departments/{hospital.plastic.pk}/statements")

    assert response.status_code == 200
    body = response.json()
    assert body["department"] == hospital.plastic.pk
    assert body["statements"]  # the signed chain tests/support/hospital.py stores
    assert body["admin"]["fingerprint"] == hospital.admin_key.fingerprint


def test_an_administrator_meets_no_missing_department(hospital):
    response = get(hospital.admin_zoe, "/api/departments/999999/statements")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
