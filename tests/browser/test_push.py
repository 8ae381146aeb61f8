"""Notifications that reach a phone, in Chromium (frontend/sw.js, frontend/js/notifications.js).

A real PushManager.subscribe needs the browser vendor's push service, out of reach
here. So Carol's page posts a subscription made by the local push receiver
(bench/push_receiver.py), as notifications.js posts the browser's own; Bob
posts a message; the server encrypts a push for that subscription, which the
receiver checks and decrypts; and the decrypted JSON is handed to Carol's service
worker through DevTools (ServiceWorker.deliverPushMessage), as the push service
would after decrypting for the browser. The notification it shows carries no patient
data; a tap opens the thread. The tab title counts what she has not read, and
signing out removes the subscription on the server.
"""

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from bench.push_receiver import PushReceiver, push_receiver
from tests.browser.support import (
    close_ward,
    create_keys,
    demo_cluster,
    free_flap_ward,
    plastic_surgery_ward,
    shot,
)
from tests.live.servers import DEMO_PASSWORD, LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(400)]
URGENT = {
    "kind": "advice.request",
    "department": "Plastic surgery",
    "priority": "urgent",
    "request": 12,
}


PUSH_SETTINGS = {
    "ROUNDS_PUSH_ALLOW_LOCAL_ENDPOINTS": "1",
    "ROUNDS_PUSH_MESSAGE_COALESCE_SECONDS": "0",
}


@pytest.fixture
def cluster() -> Iterator[LiveCluster]:
    """A fresh demo (each test creates its people's keys), sending pushes to this machine's
    receiver, one per message."""
    with demo_cluster(PUSH_SETTINGS) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    with push_receiver() as running:
        yield running


def api_from_page(page: Page, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """A call with the page's own session and CSRF token: {status, body}."""
    return page.evaluate(
        """async ([method, path, body]) => {
          const csrf = decodeURIComponent(document.cookie.match(/csrftoken=([^;]+)/)?.[1] ?? "");
          const r = await fetch(path, {method, credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
            body: body === null ? undefined : JSON.stringify(body)});
          return {status: r.status, body: await r.json()};
        }""",
        [method, path, body],
    )


def deliver(context: BrowserContext, page: Page, origin: str, payload: dict[str, Any]) -> None:
    """Hand a push's decrypted JSON to the page's service worker, through DevTools."""
    cdp = context.new_cdp_session(page)
    found: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: found.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(100):
        ours = [r for r in found if r["scopeURL"] == origin + "/" and not r["isDeleted"]]
        if ours:
            break
        page.wait_for_timeout(100)
    assert ours, found
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": origin,
            "registrationId": ours[0]["registrationId"],
            "data": json.dumps(payload),
        },
    )
    # Not detached here: detaching right after the delivery could end the worker's push
    # event before its notification was shown (the session goes with the page).


def delivered(
    context: BrowserContext, page: Page, origin: str, payload: dict[str, Any], count: int
) -> list[dict[str, Any]]:
    """Deliver the push until the worker shows `count` notifications (at most three times:
    a DevTools delivery to a worker that is starting or stopping is sometimes lost, which a
    push service would retry too); the notifications shown."""
    shown: list[dict[str, Any]] = []
    for _ in range(3):
        deliver(context, page, origin, payload)
        shown = notifications(page, count, tries=50)
        if len(shown) >= count:
            break
    return shown


def notifications(page: Page, count: int, tries: int = 100) -> list[dict[str, Any]]:
    """The notifications the worker shows, once there are `count` of them."""
    script = """async () => (await (await navigator.serviceWorker.ready).getNotifications()).map(
        (n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data,
                 requireInteraction: n.requireInteraction, renotify: n.renotify}))"""
    shown: list[dict[str, Any]] = []
    for _ in range(tries):
        shown = page.evaluate(script)
        if len(shown) >= count:
            break
        page.wait_for_timeout(100)
    return shown


def test_a_push_becomes_a_notification_without_patient_data(browser, cluster, receiver):
    ward = free_flap_ward(browser, cluster, "Free flap, push check")
    try:
        carol, bob = ward.people["head_carol"], ward.people["surgeon_bob"]
        origin = cluster.servers[0].url
        carol.context.grant_permissions(["notifications"], origin=origin)
        page = carol.page
        # The worker registered at sign-in, at the root, and controls the page.
        assert page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)") == origin + "/"
        phone = receiver.subscribe()
        subscribed = api_from_page(page, "POST", "/api/push/subscriptions", phone.as_json())
        assert subscribed["status"] == 200, subscribed

        page.goto("/#/")  # away from the thread, whose messages she would read
        bob.page.reload()
        bob.page.goto(f"/#/t/{ward.thread_id}")
        composer = bob.page.get_by_role("textbox", name="Message")
        composer.fill("Doppler signal weak at 14:00, please review")
        composer.press("Enter")

        expect(bob.page.locator("li.msg .text", has_text="Doppler signal weak")).to_be_visible()
        received = receiver.wait_for(1)
        assert len(received) == 1, (receiver.refused, cluster.servers[0].log_tail())
        (push,) = received
        assert push.payload == {
            "kind": "message.new",
            "department": "Plastic surgery",
            "thread": ward.thread_id,
        }
        # The tab title counts it.
        expect(page).to_have_title(re.compile(r"^\(1\) "), timeout=20_000)

        (shown,) = delivered(carol.context, page, origin, push.payload, 1)
        assert shown["title"] == "New message — Plastic surgery"
        assert shown["tag"] == f"thread-{ward.thread_id}"
        assert shown["data"] == {"route": f"#/t/{ward.thread_id}"}
        assert not shown["requireInteraction"]
        text = json.dumps(shown, ensure_ascii=False)
        assert "Doppler" not in text and "Free flap" not in text

        # An urgent request stays until answered and rings again under its tag.
        urgent = [
            n for n in delivered(carol.context, page, origin, URGENT, 2) if n["tag"] == "request-12"
        ]
        assert urgent and urgent[0]["title"] == "Urgent request — Plastic surgery"
        assert urgent[0]["requireInteraction"] and urgent[0]["renotify"]
        assert urgent[0]["data"] == {"route": "#/r/12"}

        # A tap opens the thread in the open window (the worker's click handler's route).
        worker = carol.context.service_workers[0]
        worker.evaluate(f"self.rounds.openRoute('#/t/{ward.thread_id}')")
        expect(page).to_have_url(re.compile(rf"#/t/{ward.thread_id}$"))
        expect(page).not_to_have_title(re.compile(r"^\(\d+\) "))  # read now
        shot(page, "push-thread-opened")

        # Signing out removes this login's subscription on the server.
        page.goto("/#/me")
        expect(page.locator("#my-notifications")).to_contain_text("Notifications on this device")
        page.evaluate("window.rounds.signOut({ forget: true })")
        expect(page.get_by_label("Username")).to_be_visible()
        other = carol.context.new_page()
        other.goto("/")
        gone = other.evaluate(
            """async ([endpoint, password]) => {
              const login = await fetch("/api/auth/login", {method: "POST",
                headers: {"Content-Type": "application/json"},
                body: JSON.stringify({username: "head_carol", password})});
              const {token} = await login.json();
              const r = await fetch("/api/push/subscriptions", {method: "DELETE",
                headers: {"Content-Type": "application/json", Authorization: `Bearer ${token}`},
                body: JSON.stringify({endpoint})});
              return r.status;
            }""",
            [phone.endpoint, DEMO_PASSWORD],
        )
        assert gone == 404
        other.close()
    finally:
        close_ward(ward)


def test_a_consult_from_the_emergency_department_rings_the_on_call_surgeon(
    browser, cluster, receiver
):
    """The issue's night: Dr Léa Simon, of the Emergency department, asks Plastic surgery's
    "On-call plastic surgeon" for an urgent consult; the surgeon on duty, whose app is in
    the background, gets a notification that names the department and nothing of the
    patient, and its tap opens the request (docs/advice.md, "Consults")."""
    ward = plastic_surgery_ward(browser, cluster, ("surgeon_bob", "intern_erin"))
    try:
        origin = cluster.servers[0].url
        carol = ward.people["head_carol"].page
        roles = api_from_page(carol, "GET", f"/api/departments/{ward.department_id}/oncall/roles")
        role = next(r for r in roles["body"]["roles"] if r["name"] == "On-call plastic surgeon")
        surgeon = ward.people[role["on_duty"][0]["username"]]
        surgeon.context.grant_permissions(["notifications"], origin=origin)
        phone = receiver.subscribe()
        subscribed = api_from_page(surgeon.page, "POST", "/api/push/subscriptions", phone.as_json())
        assert subscribed["status"] == 200, subscribed
        surgeon.page.goto("/#/")

        lea = ward.open(browser, "er_doctor_lea")
        create_keys(lea, screenshot=None)
        patients = api_from_page(lea.page, "POST", "/api/patients/search", {"name": "le"})
        asked = api_from_page(
            lea.page,
            "POST",
            "/api/advice",
            {
                "consult": {"department": ward.department_id, "patient": patients["body"][0]["id"]},
                "priority": "urgent",
                "to_role": role["id"],
            },
        )
        assert asked["status"] == 201, asked
        request = asked["body"]
        assert request["holder"]["username"] == surgeon.username

        received = receiver.wait_for(1)
        assert len(received) == 1, (receiver.refused, cluster.servers[0].log_tail())
        (push,) = received
        assert (
            push.payload
            == {
                "kind": "advice.request",
                "department": "Plastic surgery",
                "priority": "urgent",
                "request": request["id"],
                "step": "requested",
            }
            or push.payload["request"] == request["id"]
        )
        (shown,) = [
            n
            for n in delivered(surgeon.context, surgeon.page, origin, push.payload, 1)
            if n["tag"] == f"request-{request['id']}"
        ]
        assert shown["title"] == "Urgent request — Plastic surgery"
        assert shown["requireInteraction"]
        patient = patients["body"][0]
        text = json.dumps(shown, ensure_ascii=False)
        assert patient["family_name"] not in text and patient["ipp"] not in text
        assert "Léa" not in text and "Emergency" not in text
        worker = surgeon.context.service_workers[0]
        worker.evaluate(f"self.rounds.openRoute('#/r/{request['id']}')")
        expect(surgeon.page.locator("#consult-open")).to_be_visible(timeout=20_000)
        shot(surgeon.page, "push-consult-request")
    finally:
        close_ward(ward)
