"""The export signing key file and the export pin, refused when they are not keys."""

from pathlib import Path

import nacl.signing
import pytest

from client.case_export import load_signing_key
from client.errors import RoundsClientError
from client.verify_export import pinned_public_key

SEED = bytes(range(32))
PUBLIC = nacl.signing.SigningKey(SEED).verify_key.encode().hex()


def test_a_signing_key_file_is_64_hex_digits(tmp_path: Path):
    path = tmp_path / "export.key"
    path.write_text(f"  {SEED.hex().upper()}\n")
    assert load_signing_key(path).verify_key.encode().hex() == PUBLIC
    for wrong in (SEED.hex()[:-1], SEED.hex() + "00", "zz" + SEED.hex()[2:]):
        path.write_text(wrong)
        with pytest.raises(RoundsClientError) as refused:
            load_signing_key(path)
        assert refused.value.code == "malformed_key_file"


def test_the_export_key_is_pinned_by_option_or_pins_file(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("ROUNDS_PINS_FILE", raising=False)
    assert pinned_public_key(PUBLIC, None).hex() == PUBLIC
    pins = tmp_path / "institution.json"
    pins.write_text(f'{{"export": "{PUBLIC}"}}')
    assert pinned_public_key(None, pins).hex() == PUBLIC
    pins.write_text('{"admin": "00"}')
    for given, path in ((None, None), ("abcd", None), (None, pins)):
        with pytest.raises(RoundsClientError) as refused:
            pinned_public_key(given, path)
        assert refused.value.code == "pins_required"
