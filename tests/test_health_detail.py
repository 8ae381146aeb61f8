"""/healthz tells anyone whether the process serves, and only its operators what runs
(issue 17: the database vendor and the channel layer were anyone's to read).

The operators are those /metrics answers: loopback without a forwarding header, or
`Authorization: Bearer $ROUNDS_METRICS_TOKEN`. The status codes are the same for all,
so a load balancer checking from anywhere still takes a process out of rotation.
"""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)

OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}
TOKEN = "operators-only-7f3a"


def detailed(body: dict) -> bool:
    return {"database", "channel_layer", "process"} <= body.keys()


@pytest.mark.parametrize(
    "caller",
    [
        OUTSIDE,
        # Through a proxy the peer is the proxy's loopback address: it says nothing.
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},
        {**OUTSIDE, "HTTP_AUTHORIZATION": "Bearer a-guess"},
    ],
)
def test_anyone_else_gets_the_status_only(settings, caller):
    settings.ROUNDS_METRICS_TOKEN = TOKEN
    response = Client().get("/healthz", **caller)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert b"sqlite" not in response.content and b"postgresql" not in response.content


@pytest.mark.parametrize(
    "caller", [{"REMOTE_ADDR": "127.0.0.1"}, {**OUTSIDE, "HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}]
)
def test_operators_get_the_checks_and_the_process(settings, caller):
    settings.ROUNDS_METRICS_TOKEN = TOKEN
    body = Client().get("/healthz", **caller).json()
    assert body["status"] == "ok" and detailed(body)
    assert body["database"]["vendor"] in ("sqlite", "postgresql")


def test_an_unreachable_database_is_still_503_for_anyone(monkeypatch):
    import rounds.health

    def unreachable():
        raise ConnectionError("the database is restarting")

    monkeypatch.setattr(rounds.health, "_check_database", unreachable)
    response = Client().get("/healthz", **OUTSIDE)
    assert response.status_code == 503
    assert response.json() == {"status": "degraded"}
