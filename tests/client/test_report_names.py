"""The CLI names caregivers and departments as colleagues know them, on the institution's clock.

`rounds library` and `rounds report` read the library's answer: the
sender's display_name, the department_name and the page's time_zone.
A fake client stands in for the server and the keys (tests/client/
test_compliance_live.py runs the real commands).
"""

import asyncio

from client.cli import print_table
from client.report import write_patient_report
from tests.client.reports import FakeLibrary, item


def test_the_library_table_shows_names_and_times_in_the_institutions_zone(capsys):
    print_table([item()], "Europe/Paris")
    header, row = capsys.readouterr().out.splitlines()
    assert "captured (Europe/Paris)" in header
    # 10:00 UTC on 5 October is 12:00 in Paris (summer time).
    assert "05/10/2026 12:00" in row and "+00:00" not in row
    assert "Alice Martin" in row and "nurse_alice" not in row


def test_the_report_names_the_caregiver_department_and_zone(tmp_path):
    client = FakeLibrary()
    out = tmp_path / "report.pdf"
    done = asyncio.run(write_patient_report(client, "00800100", out, compress=False))  # type: ignore[arg-type]
    pdf = out.read_bytes()
    assert done["zone"] == "Europe/Paris" and client.recorded == [(7, 1)]
    assert b"By Alice Martin, Plastic surgery" in pdf and b"nurse_alice" not in pdf
    assert b"Times in Europe/Paris" in pdf and b"taken on 05/10/2026 at 12:00" in pdf
    assert b"Caption: Day 3" in pdf and b"Hand and wrist" in pdf
