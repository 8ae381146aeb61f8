"""The CLI names caregivers and departments as colleagues know them, on the institution's clock.

`rounds library` and `rounds report` read the library's answer: the
sender's display_name, the department_name and the page's time_zone.
A fake client stands in for the server and the keys (tests/client/
test_compliance_live.py runs the real commands).
"""

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

from PIL import Image

from client.cli import print_table
from client.report import write_patient_report

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


class FakeClient:
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


def test_the_library_table_shows_names_and_times_in_the_institutions_zone(capsys):
    print_table([item()], "Europe/Paris")
    header, row = capsys.readouterr().out.splitlines()
    assert "captured (Europe/Paris)" in header
    # 10:00 UTC on 5 October is 12:00 in Paris (summer time).
    assert "2026-10-05 12:00" in row and "+00:00" not in row
    assert "Alice Martin" in row and "nurse_alice" not in row


def test_the_report_names_the_caregiver_department_and_zone(tmp_path):
    client = FakeClient()
    out = tmp_path / "report.pdf"
    done = asyncio.run(write_patient_report(client, "00800100", out, compress=False))  # type: ignore[arg-type]
    pdf = out.read_bytes()
    assert done["zone"] == "Europe/Paris" and client.recorded == [(7, 1)]
    assert b"By Alice Martin, Plastic surgery" in pdf and b"nurse_alice" not in pdf
    assert b"Times in Europe/Paris" in pdf and b"taken 2026-10-05 12:00" in pdf
    assert b"Caption: Day 3" in pdf and b"Hand and wrist" in pdf
