"""What the report and library tests share: one library item, a client that serves it
without a server or keys, and the text a reportlab PDF shows."""

import io
import re
from collections.abc import AsyncIterator
from typing import Any

from PIL import Image

from tests.support.pdf import inflated_streams

PATIENT = {
    "id": 7,
    "ipp": "00800100",
    "family_name": "Lefèvre",
    "given_name": "Léa",
    "birth_date": "1985-01-30",
}


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(out, "JPEG")
    return out.getvalue()


def item() -> dict[str, Any]:
    return {
        "id": 31,
        "upload": "u1",
        "captured_at": "2026-10-05T10:00:00+00:00",
        "keywords": ["hand"],
        "consent": "teaching",
        "department": 1,
        "department_name": "Plastic surgery",
        "patient": PATIENT,
        "sender": {"id": 4, "username": "nurse_alice", "display_name": "Alice Martin"},
        "message": {"id": 2},
    }


class FakeLibrary:
    """The calls `rounds library` and `rounds report` make, answered with `item()`."""

    def __init__(self) -> None:
        self.recorded: list[tuple[int, int]] = []

    async def library_pages(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        yield {"items": [item()], "next_cursor": None, "time_zone": "Europe/Paris"}

    async def photo_keywords(self) -> list[dict[str, str]]:
        return [{"code": "hand", "label": "Hand and wrist", "category": "site"}]

    async def open_photo_message(self, message: Any, *, department: int) -> dict[str, Any]:
        entry = {"upload": "u1", "captured_at": "2026-10-05T10:00:00+00:00", "keywords": ["hand"]}
        return {"type": "photos", "text": "Day 3", "photos": [entry]}

    async def download_photo(self, entry: Any) -> bytes:
        return jpeg()

    async def record_report(self, patient: int, photos: int) -> dict[str, Any]:
        self.recorded.append((patient, photos))
        return {}

    async def aclose(self) -> None:
        pass


_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"\n": b""}


def _unescaped(literal: bytes) -> bytes:
    def one(found: re.Match[bytes]) -> bytes:
        code = found.group(1)
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        return _ESCAPES.get(code, code)

    return re.sub(rb"\\([0-7]{1,3}|.)", one, literal, flags=re.S)


def pdf_text(pdf: bytes) -> str:
    """Every string reportlab shows in `pdf` (its streams inflated), in drawing order,
    joined by single spaces: a sentence wrapped over two lines reads as one.

    reportlab writes the standard fonts' text as literal strings in WinAnsi (cp1252),
    `(Mots-cl\\351s : aucun) Tj`, and a non-breaking space as a plain space: the line
    breaking keeps it, the glyph is the same.
    """
    contents = [pdf, *inflated_streams(pdf)]
    shown = [
        _unescaped(literal).decode("cp1252")
        for content in contents
        for literal in re.findall(rb"\(((?:[^()\\]|\\.)*)\) Tj", content, re.S)
    ]
    return " ".join(" ".join(shown).split())
