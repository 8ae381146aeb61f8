"""The export signing key file and the export pin, refused when they are not keys; the
transcript's photos embedded as they are."""

import io
from pathlib import Path

import nacl.signing
import pytest
from PIL import Image
from reportlab import rl_config

from client.case_export import binary_pdf_streams, load_signing_key
from client.errors import RoundsClientError
from client.export_pdf import write_transcript
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


def test_a_transcript_embeds_each_photo_as_its_jpeg_bytes(tmp_path: Path):
    """Not ASCII85-encoded (reportlab's default, pure Python without rl_accel: most of a
    large export's time); the setting is reportlab's global one and is put back."""
    photo = io.BytesIO()
    Image.effect_noise((64, 48), 60).convert("RGB").save(photo, "JPEG")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "photo-7.jpg").write_bytes(photo.getvalue())
    thread = {"id": 3, "title": "Review", "patient": {"ipp": "0042", "family_name": "Doe"}}
    review = {
        "case": 1, "thread": thread, "department": 2, "names": {5: "surgeon_bob"},
        "chain": {"statements": 1, "head": {"seq": 1, "hash": "ab" * 32}},
        "key_versions": [], "server_compliance_key_is_this_one": True, "statements": [],
        "failed": 0,
        "messages": [{
            "kind": "message", "id": 9, "seq": 1, "sender": {"id": 5}, "head": 1,
            "server_time": "2026-12-05T10:00:00+00:00", "check": {"ok": True}, "text": "Day 3",
            "photos": [{"attachment": 7, "keywords": ["hand"], "consent": "care",
                        "captured_at": None, "file": "photos/photo-7.jpg"}],
        }],
    }  # fmt: skip
    before = rl_config.useA85
    with binary_pdf_streams():
        write_transcript(
            tmp_path / "transcript.pdf", {"id": 1, "reference": "C-1"}, review, tmp_path
        )
    pdf = (tmp_path / "transcript.pdf").read_bytes()
    assert photo.getvalue() in pdf
    assert b"ASCII85Decode" not in pdf and b"Case C-1" in pdf
    assert rl_config.useA85 == before
