"""The browser's crypto (frontend/js/crypto.js) passes the shared vectors of tests/vectors/."""

from pathlib import Path

import pytest

from tests.browser.conftest import new_context

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

CHECKS = (Path(__file__).parent / "vector_checks.js").read_text()


def test_every_vector_passes_in_chromium(browser, cluster, vectors):
    context = new_context(browser, cluster)
    page = context.new_page()
    page.goto("/")
    result = page.evaluate(
        "async (vectors) => { const c = await import('/app/js/crypto.js'); await c.ready;"
        + CHECKS
        + "; return await checkVectors(c, vectors); }",
        vectors,
    )
    context.close()
    assert result["failures"] == []
    expected = sum(len(vectors[n].get(k, [])) for n in vectors for k in ("valid", "invalid"))
    expected += len(vectors["statement"]["chain"]) + len(vectors["statement"]["invalid_chains"])
    assert result["checked"] == expected


def test_index_has_a_strict_content_security_policy(browser, cluster):
    context = new_context(browser, cluster)
    response = context.request.get("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in policy
    assert "unsafe-inline" not in policy
    assert "csrftoken" in response.headers.get("set-cookie", "")
    assert context.request.get("/app/../manage.py").status == 404
    assert context.request.get("/app/vendor/update.sh").status == 404
    assert context.request.get("/app/institution.json").ok
    context.close()
