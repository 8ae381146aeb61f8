"""The service worker is served at the root, as a script, under the app's policy."""

import pytest
from django.test import Client


@pytest.mark.parametrize("method", ["get", "head"])
def test_the_service_worker_is_served_at_the_root(db, method):
    response = getattr(Client(), method)("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "no-cache"  # a new worker is picked up at once
    assert response["X-Content-Type-Options"] == "nosniff"
    if method == "get":
        assert b'addEventListener("push"' in b"".join(response.streaming_content)


def test_only_reading_it_is_allowed(db):
    assert Client().post("/sw.js").status_code == 405
