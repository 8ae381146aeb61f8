"""On-call roles and the roster in the browser (views/oncall.js, views/rosterimport.js;
docs/oncall.md, "The roster in the browser"), on real daphne.

The demo hospital with its seeded roster (rooms/demo.py), before any user key
(conftest's cluster): head_carol and nurse_alice create their keys. Carol, on
a phone (360x740), opens "On call" from Plastic surgery and sees who is on
duty now, as the server says; she adds a role, which has nobody on duty, then
a shift from this hour, which puts Bob on duty; imports a CSV of one row
after its report; previews a file with a refused row, which says its line and
why and offers no commit, and nothing is written; a file over the limit is
refused in words; a file previewed before its role is archived is refused
whole at the commit (`roster_refused`); a name already taken is refused; she
removes a shift after a confirmation. Alice reads the same roster with no
control to change it. Screenshots go to var/screenshots/oncall-*.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import close_ward, plastic_surgery_ward, shot
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

PARIS = ZoneInfo("Europe/Paris")  # settings.TIME_ZONE, and the context's (support.new_context)
SURGEON = "On-call plastic surgeon"
HAND = "Hand surgeon on call"
HEADER = "role,username,start,end\n"
DASH = "\u2013"  # between a shift's start and end


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = plastic_surgery_ward(browser, cluster, ("nurse_alice",), sign=False)
    yield ward
    close_ward(ward)


def api(page: Page, path: str) -> dict:
    """An answer of the API to the page's own session (its cookie)."""
    response = page.request.get(path)
    assert response.ok, response.text()
    return response.json()


def roles(page: Page, department: int) -> dict[str, dict]:
    return {r["name"]: r for r in api(page, f"/api/departments/{department}/oncall/roles")["roles"]}


def shifts(page: Page, department: int, role: int) -> list[dict]:
    return api(page, f"/api/departments/{department}/oncall/roster?role={role}")["shifts"]


def open_oncall(page: Page, department: int) -> None:
    """From the department's screen, as a clinician gets there."""
    page.goto(f"/#/d/{department}")
    page.get_by_role("link", name="On call").click()
    expect(page.get_by_role("heading", name="On duty now")).to_be_visible()
    expect(page.locator("#on-duty [data-role]").first).to_be_visible()


def choose_file(page: Page, name: str, text: str) -> None:
    page.locator("#import-box summary").click()
    page.locator("#roster-file").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": text.encode()}
    )


def at(day: datetime, hour: int) -> str:
    """A time of the CSV, without offset: Paris time, as the server reads it."""
    return day.replace(hour=hour, minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")


def test_a_head_sees_who_is_on_duty_now_as_the_server_says(ward):
    carol = ward.people["head_carol"].page
    department = ward.department_id
    open_oncall(carol, department)
    on_duty = roles(carol, department)[SURGEON]["on_duty"]
    assert on_duty, "the demo's surgeons always have someone on duty"
    role = carol.locator(f"#on-duty [data-role='{SURGEON}']")
    expect(role).to_contain_text(f"On duty: {on_duty[0]['display_name']}")
    # The next 7 days by day, dd/mm/yyyy, with the seeded 12-hour shifts at 08:00 and 20:00.
    today = datetime.now(PARIS)
    expect(carol.locator("#roster-days [data-day]").first).to_contain_text(
        today.strftime("%d/%m/%Y")
    )
    assert carol.locator("#roster-days [data-day]").count() >= 7
    tomorrow = carol.locator(f"[data-day='{(today + timedelta(days=1)).date().isoformat()}']")
    expect(tomorrow.locator("li[data-shift]", has_text=f"08:00{DASH}20:00").first).to_be_visible()
    # Night nurses work nights only: the days are gaps, said in words.
    expect(
        tomorrow.locator("li[data-kind=gap]", has_text="nobody on duty as Night nurse")
    ).to_have_count(1)
    expect(carol.locator("#new-role-box")).to_be_visible()
    shot(carol, "oncall-01-head-phone")


def test_a_head_adds_a_role_then_a_shift_that_puts_someone_on_duty(ward):
    carol = ward.people["head_carol"].page
    department = ward.department_id
    open_oncall(carol, department)
    carol.locator("#new-role-box summary").click()
    carol.get_by_label("Name of the role").fill(HAND)
    carol.get_by_role("button", name="Add role").click()
    role = carol.locator(f"#on-duty [data-role='{HAND}']")
    expect(role).to_contain_text("Nobody on duty")
    # A name taken, whatever its case, is refused in words.
    carol.get_by_label("Name of the role").fill("night NURSE")
    carol.get_by_role("button", name="Add role").click()
    expect(carol.locator("#new-role-error")).to_have_attribute("data-code", "conflict")
    expect(carol.locator("#new-role-error")).to_contain_text("already has an on-call role")

    start = datetime.now(PARIS).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=2)
    carol.locator("#add-shift-box summary").click()
    carol.get_by_label("Role", exact=True).select_option(label=HAND)
    carol.get_by_label("Who").select_option(label="Dr Bob Martin")
    carol.get_by_label("Start date").fill(start.strftime("%d/%m/%Y"))
    carol.get_by_label("Start time").fill(start.strftime("%H:%M"))
    # A time off the 24-hour clock, and an end at its start, are refused here.
    carol.get_by_label("End date").fill(start.strftime("%d/%m/%Y"))
    carol.get_by_label("End time").fill("25:00")
    carol.get_by_role("button", name="Add shift").click()
    expect(carol.locator("#shift-error")).to_contain_text("times as hh:mm (24-hour clock)")
    expect(carol.get_by_label("End time")).to_have_attribute("aria-invalid", "true")
    carol.get_by_label("End date").fill(start.strftime("%d/%m/%Y"))
    carol.get_by_label("End time").fill(start.strftime("%H:%M"))
    carol.get_by_role("button", name="Add shift").click()
    expect(carol.locator("#shift-error")).to_have_text("A shift ends after it starts.")
    carol.get_by_label("End date").fill(end.strftime("%d/%m/%Y"))
    carol.get_by_label("End time").fill(end.strftime("%H:%M"))
    shot(carol, "oncall-02-add-shift-phone")
    carol.get_by_role("button", name="Add shift").click()
    expect(role).to_contain_text("On duty: Dr Bob Martin")
    hand = roles(carol, department)[HAND]
    assert [u["username"] for u in hand["on_duty"]] == ["surgeon_bob"]
    [shift] = shifts(carol, department, hand["id"])
    assert datetime.fromisoformat(shift["starts_at"]) == start
    assert datetime.fromisoformat(shift["ends_at"]) == end
    expect(carol.locator(f"li[data-shift='{shift['id']}']")).to_contain_text(
        f"{start:%H:%M}{DASH}{end:%H:%M}" if end.date() == start.date() else "Dr Bob Martin"
    )


def test_a_head_imports_a_csv_after_its_report(ward):
    carol = ward.people["head_carol"].page
    department = ward.department_id
    open_oncall(carol, department)
    surgeon = roles(carol, department)[SURGEON]["id"]
    before = len(shifts(carol, department, surgeon))
    tomorrow = datetime.now(PARIS) + timedelta(days=1)
    # Alice covers tomorrow's day beside the seeded surgeon: an overlap, reported.
    choose_file(
        carol, "rota.csv", HEADER + f"{SURGEON},nurse_alice,{at(tomorrow, 8)},{at(tomorrow, 20)}\n"
    )
    counts = carol.locator("#import-counts")
    expect(counts).to_have_attribute("data-accepted", "1")
    expect(counts).to_contain_text("1 shift to add")
    expect(counts).to_contain_text("0 rows refused")
    # The roster the commit would leave, over the file's dates: two people at once.
    overlap = carol.locator("#import-coverage li[data-kind=overlap]")
    expect(overlap).to_have_count(1)
    expect(overlap).to_contain_text(f"Overlap {tomorrow:%d/%m/%Y} 08:00{DASH}20:00:")
    expect(overlap).to_contain_text(f"Alice Durand, RN at once as {SURGEON}.")
    assert len(shifts(carol, department, surgeon)) == before, "a preview writes nothing"
    carol.locator("#import-report").scroll_into_view_if_needed()
    shot(carol, "oncall-03-import-report-phone")
    carol.get_by_role("button", name="Commit import").click()
    expect(carol.locator("#import-status")).to_have_text("1 shift imported.")
    day = carol.locator(f"[data-day='{tomorrow.date().isoformat()}']")
    expect(day.locator("li[data-user=nurse_alice]", has_text=SURGEON)).to_contain_text(
        f"08:00{DASH}20:00"
    )
    expect(day.locator("li[data-kind=overlap]", has_text=SURGEON)).to_contain_text("Alice Durand")
    assert len(shifts(carol, department, surgeon)) == before + 1


def test_a_file_with_a_refused_row_shows_why_and_imports_nothing(ward):
    carol = ward.people["head_carol"].page
    department = ward.department_id
    open_oncall(carol, department)
    hand = roles(carol, department)[HAND]["id"]
    before = shifts(carol, department, hand)
    later = datetime.now(PARIS) + timedelta(days=2)
    choose_file(
        carol,
        "rota.csv",
        HEADER
        + f"{HAND},surgeon_bob,{at(later, 8)},{at(later, 20)}\n"
        + f"Cardiology on call,surgeon_bob,{at(later, 8)},{at(later, 20)}\n",
    )
    refused = carol.locator("#import-refused li[data-line='3']")
    expect(refused).to_have_attribute("data-reason", "unknown_role")
    expect(refused).to_contain_text(
        "Line 3: refused, no on-call role of this department has that name."
    )
    expect(carol.locator("#import-counts")).to_contain_text("1 row refused")
    expect(carol.locator("#import-report")).to_contain_text(
        "Nothing is imported while a row is refused"
    )
    expect(carol.get_by_role("button", name="Commit import")).to_have_count(0)
    refused.scroll_into_view_if_needed()
    shot(carol, "oncall-04-import-refused-phone")
    assert shifts(carol, department, hand) == before

    # Over the server's limit of 5,000 shifts: refused in words, nothing read further.
    row = f"{HAND},surgeon_bob,{at(later, 8)},{at(later, 20)}\n"
    carol.locator("#roster-file").set_input_files(
        {"name": "year.csv", "mimeType": "text/csv", "buffer": (HEADER + row * 5001).encode()}
    )
    error = carol.locator("#import-error")
    expect(error).to_have_attribute("data-code", "upload_too_large")
    expect(error).to_contain_text("too large to import: at most 1 MiB and 5,000 shifts")
    assert shifts(carol, department, hand) == before


def test_a_head_removes_a_shift_after_confirming(ward):
    carol = ward.people["head_carol"].page
    department = ward.department_id
    open_oncall(carol, department)
    hand = roles(carol, department)[HAND]["id"]
    [bob] = [s for s in shifts(carol, department, hand) if s["user"]["username"] == "surgeon_bob"]
    button = carol.locator(f"[data-remove-shift='{bob['id']}']")
    button.click()
    carol.get_by_role("dialog", name="Remove this shift?").get_by_role(
        "button", name="Cancel"
    ).click()
    expect(carol.locator(f"li[data-shift='{bob['id']}']")).to_have_count(1)
    button.click()
    dialog = carol.get_by_role("dialog", name="Remove this shift?")
    expect(dialog).to_contain_text("Dr Bob Martin")
    carol.locator("#confirm-remove-shift").click()
    expect(carol.locator(f"li[data-shift='{bob['id']}']")).to_have_count(0)
    expect(carol.locator(f"#on-duty [data-role='{HAND}']")).to_contain_text("Nobody on duty")
    assert bob["id"] not in [s["id"] for s in shifts(carol, department, hand)]
    assert roles(carol, department)[HAND]["on_duty"] == []


def test_an_import_whose_role_is_archived_after_the_preview_is_refused_whole(ward):
    carol = ward.people["head_carol"].page
    department = ward.department_id
    open_oncall(carol, department)
    hand = roles(carol, department)[HAND]["id"]
    before = shifts(carol, department, hand)
    later = datetime.now(PARIS) + timedelta(days=3)
    choose_file(carol, "rota.csv", HEADER + f"{HAND},surgeon_bob,{at(later, 8)},{at(later, 20)}\n")
    expect(carol.locator("#import-counts")).to_have_attribute("data-accepted", "1")
    # Renaming to a name taken is refused; archiving asks first.
    carol.locator(f"[data-rename='{hand}']").click()
    carol.get_by_label(f"New name for {HAND}").fill("Night nurse")
    carol.get_by_role("button", name="Save").click()
    expect(carol.locator("#roles-error")).to_have_attribute("data-code", "conflict")
    expect(carol.locator("#roles-error")).to_contain_text("already has an on-call role")
    carol.locator(f"#on-duty [data-role-id='{hand}']").get_by_role("button", name="Cancel").click()
    carol.locator(f"[data-archive='{hand}']").click()
    expect(carol.get_by_role("dialog", name=f"Archive {HAND}?")).to_contain_text(
        "nobody is on duty"
    )
    carol.locator("#confirm-archive-role").click()
    expect(carol.locator(f"#on-duty [data-role='{HAND}']")).to_have_count(0)
    expect(carol.locator("#archived-roles")).to_contain_text("1 archived role")
    carol.get_by_role("button", name="Commit import").click()
    error = carol.locator("#import-error")
    expect(error).to_have_attribute("data-code", "roster_refused")
    expect(error).to_contain_text("Nothing was imported: 1 row is refused now.")
    expect(carol.locator("#import-refused li[data-line='2']")).to_contain_text(
        "that role is archived"
    )
    assert shifts(carol, department, hand) == before
    assert roles(carol, department)[HAND]["active"] is False


def test_a_member_reads_the_roster_without_controls(ward):
    alice = ward.people["nurse_alice"].page
    department = ward.department_id
    open_oncall(alice, department)
    on_duty = roles(alice, department)[SURGEON]["on_duty"]
    expect(alice.locator(f"#on-duty [data-role='{SURGEON}']")).to_contain_text(
        on_duty[0]["display_name"]
    )
    expect(alice.locator("#roster-days li[data-shift]").first).to_be_visible()
    tomorrow = (datetime.now(PARIS) + timedelta(days=1)).date().isoformat()
    # The shift Carol imported for her, and the overlap it makes.
    day = alice.locator(f"[data-day='{tomorrow}']")
    expect(day.locator("li[data-user=nurse_alice]", has_text=SURGEON)).to_be_visible()
    expect(day.locator("li[data-kind=overlap]")).to_contain_text("Alice Durand")
    for control in (
        "[data-remove-shift]",
        "[data-archive]",
        "[data-rename]",
        "#new-role-box",
        "#add-shift-box",
        "#roster-file",
    ):
        expect(alice.locator(control)).to_have_count(0)
    shot(alice, "oncall-05-member-phone")


def test_a_members_screen_follows_a_heads_change_live(ward):
    """Alice keeps the on-call screen open; Carol adds a role on hers: Alice's shows it
    without a reload (the oncall.changed event, docs/protocol.md)."""
    alice, carol = ward.people["nurse_alice"].page, ward.people["head_carol"].page
    department = ward.department_id
    open_oncall(alice, department)
    open_oncall(carol, department)
    carol.locator("#new-role-box summary").click()
    carol.get_by_label("Name of the role").fill("Wound care nurse")
    carol.get_by_role("button", name="Add role").click()
    expect(alice.locator("#on-duty [data-role='Wound care nurse']")).to_contain_text(
        "Nobody on duty", timeout=15_000
    )
