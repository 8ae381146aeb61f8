"""The export signing key file and the export pin, refused when they are not keys; the
transcript's photos embedded as they are."""

import io
from pathlib import Path

import nacl.signing
import pytest
from PIL import Image
from reportlab import rl_config

from client import export_pdf
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
        assert write_transcript(tmp_path, {"id": 1, "reference": "C-1"}, review) == [
            "transcript.pdf"
        ]
    pdf = (tmp_path / "transcript.pdf").read_bytes()
    assert photo.getvalue() in pdf
    assert b"ASCII85Decode" not in pdf and b"Case C-1" in pdf
    assert rl_config.useA85 == before


def _thread_review(folder: Path, messages: int, photos_each: int) -> tuple[dict, list[bytes]]:
    """A checked timeline of `messages` notes, each with `photos_each` saved photos."""
    (folder / "photos").mkdir(exist_ok=True)
    jpegs, entries = [], []
    for seq in range(1, messages + 1):
        photos = []
        for n in range(photos_each):
            photo = io.BytesIO()
            Image.effect_noise((64, 48), 60 + seq + n).convert("RGB").save(photo, "JPEG")
            name = f"photos/photo-{seq * 10 + n}.jpg"
            (folder / name).write_bytes(photo.getvalue())
            jpegs.append(photo.getvalue())
            photos.append({"attachment": seq * 10 + n, "keywords": [], "consent": "care",
                           "captured_at": None, "file": name})  # fmt: skip
        entries.append({
            "kind": "message", "id": seq, "seq": seq, "sender": {"id": 5}, "head": 1,
            "server_time": "2026-12-05T10:00:00+00:00", "check": {"ok": True},
            "text": f"Note number {seq:04d}", "photos": photos,
        })  # fmt: skip
    review = {
        "case": 1, "thread": {"id": 3, "title": "Review", "patient": {"ipp": "0042"}},
        "department": 2, "names": {5: "surgeon_bob"}, "key_versions": [],
        "chain": {"statements": 1, "head": {"seq": 1, "hash": "ab" * 32}},
        "server_compliance_key_is_this_one": True, "statements": [], "failed": 0,
        "messages": entries,
    }  # fmt: skip
    return review, jpegs


def test_a_long_thread_is_written_in_volumes_each_bounded_and_all_of_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    review, jpegs = _thread_review(tmp_path, messages=30, photos_each=2)
    monkeypatch.setattr(export_pdf, "LINES_PER_VOLUME", 40)
    monkeypatch.setattr(export_pdf, "PHOTO_BYTES_PER_VOLUME", 3 * max(map(len, jpegs)))
    with binary_pdf_streams():
        names = write_transcript(tmp_path, {"id": 1, "reference": "C-1"}, review)
    assert names[0] == "transcript.pdf" and names[1] == "transcript-2.pdf" and len(names) > 3
    pdfs = [(tmp_path / name).read_bytes() for name in names]
    for number, pdf in enumerate(pdfs, 1):
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
        assert f"volume {number} of {len(names)}".encode() in pdf
        assert sum(jpeg in pdf for jpeg in jpegs) <= 3  # never more photos than a volume holds
    for seq in range(1, 31):
        assert sum(f"Note number {seq:04d}".encode() in pdf for pdf in pdfs) == 1
    assert all(sum(jpeg in pdf for pdf in pdfs) == 1 for jpeg in jpegs)


def test_a_short_thread_is_one_transcript_without_volume_numbers(tmp_path: Path):
    review, _ = _thread_review(tmp_path, messages=3, photos_each=1)
    with binary_pdf_streams():
        assert write_transcript(tmp_path, {"id": 1, "reference": "C-1"}, review) == [
            "transcript.pdf"
        ]
    assert b"volume" not in (tmp_path / "transcript.pdf").read_bytes()
