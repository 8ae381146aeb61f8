"""The browser's crypto (frontend/js/crypto.js) passes the shared vectors of tests/vectors/.

Every file is checked in Chromium as tests/crypto/test_vectors.py checks it
with the Python API (tests/browser/vector_checks.js), and Project Wycheproof's
Ed25519, X25519 and XChaCha20-Poly1305 files run against the vendored
libsodium-wrappers-sumo as tests/crypto/test_wycheproof.py runs them against
PyNaCl.
"""

import json
from pathlib import Path

import pytest

from tests.browser.support import VECTORS, new_context

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

CHECKS = (Path(__file__).parent / "vector_checks.js").read_text()
WYCHEPROOF = VECTORS / "wycheproof"
WYCHEPROOF_FILES = {
    "ed25519": "ed25519_test.json",
    "x25519": "x25519_test.json",
    "xchacha20_poly1305": "xchacha20_poly1305_test.json",
}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def all_vectors(vectors) -> dict:
    """The conftest's files, and those it does not load (identity, keyversion, consult)."""
    return {
        **vectors,
        **{name: load(VECTORS / f"{name}.json") for name in ("identity", "keyversion", "consult")},
    }


def expected_counts(v: dict) -> dict[str, int]:
    """How many cases vector_checks.js must report per file: every case in it, once."""

    def cases(name: str) -> int:
        return len(v[name]["valid"]) + len(v[name]["invalid"])

    return {
        "identity": len(v["identity"]["identities"]) + len(v["identity"]["invalid_public"]),
        # each statement, the replay of the chain, each broken chain
        "statement": len(v["statement"]["chain"]) + 1 + len(v["statement"]["invalid_chains"]),
        # each room key, each record, the commitment mismatch
        "keyversion": len(v["keyversion"]["room_keys"]) + cases("keyversion") + 1,
        "envelope": cases("envelope") + len(v["envelope"]["in_chain"]["cases"]),
        "wrap": cases("wrap"),
        "stream": cases("stream"),
        "backup": cases("backup"),
        # each statement, the replay, each key, each key version, the guest's
        # version, each wrap, each envelope, each broken chain
        "consult": len(v["consult"]["chain"])
        + 1
        + len(v["consult"]["keys"])
        + len(v["consult"]["key_versions"])
        + 1
        + len(v["consult"]["wraps"])
        + len(v["consult"]["envelopes"])
        + len(v["consult"]["invalid_chains"]),
    }


def run_in_chromium(browser, cluster, script: str, argument: dict) -> dict:
    context = new_context(browser, cluster)
    try:
        page = context.new_page()
        page.goto("/")
        return page.evaluate(script, argument)
    finally:
        context.close()


def test_every_vector_passes_in_chromium(browser, cluster, all_vectors):
    result = run_in_chromium(
        browser,
        cluster,
        "async (vectors) => { const c = await import('/app/js/crypto.js'); await c.ready;"
        + CHECKS
        + "; return await checkVectors(c, vectors); }",
        all_vectors,
    )
    assert result["failures"] == []
    assert result["checked"] == expected_counts(all_vectors)


def test_wycheproof_passes_in_chromium(browser, cluster):
    files = {name: load(WYCHEPROOF / filename) for name, filename in WYCHEPROOF_FILES.items()}
    result = run_in_chromium(
        browser,
        cluster,
        "async (files) => { const c = await import('/app/js/crypto.js'); await c.ready;"
        " const sodium = (await import('/app/js/crypto/sodium.js')).default;"
        + CHECKS
        + "; return await checkWycheproof(sodium, c, files); }",
        files,
    )
    assert result["failures"] == []
    assert result["checked"] == {name: data["numberOfTests"] for name, data in files.items()}
    # The acceptable X25519 cases behave as with PyNaCl (test_wycheproof.py):
    # accepted with RFC 7748's output, except a zero shared secret, refused.
    acceptable = [
        test
        for group in files["x25519"]["testGroups"]
        for test in group["tests"]
        if test["result"] == "acceptable"
    ]
    refused = sum(test["shared"] == "00" * 32 for test in acceptable)
    assert result["acceptable"] == {"accepted": len(acceptable) - refused, "refused": refused}


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
