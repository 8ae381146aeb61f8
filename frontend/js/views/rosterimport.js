// @ts-check
// A head's roster import (docs/oncall.md, "Importing a roster"): a CSV or iCalendar
// file read here as text, sent to the dry run, whose report is shown (what it would
// add, each refused row with its line and why, the gaps and overlaps it would leave);
// only then "Commit import" sends the same text again. The server checks every row
// again at the commit and imports all or nothing (`roster_refused`). The file is
// never stored, here or there.
import { post } from "../api.js";
import { N_, locale, t, tn } from "../i18n.js";
import { h, showError, toast } from "../ui.js";

/** @import { Coverage, ImportRow, Refusal, RosterImport } from "../types/api.js" */
/** @typedef {import("./oncall.js").Clock} Clock */

// The server's limit (rooms/roster_files.py MAX_BYTES): a larger file is not sent at all.
const MAX_BYTES = 1024 * 1024;

// Why a row is refused (rooms/roster_files.py Reason), in words.
/** @type {Record<string, string>} */
const REASONS = {
  wrong_columns: N_("it does not have four columns (role, username, start, end)"),
  missing_field: N_("it lacks a role, a person or a start"),
  bad_time: N_("a time is not a date and time (such as 2026-12-07T08:00), or does not exist on the clock that day"),
  end_before_start: N_("it ends at or before its start"),
  recurrence_not_supported: N_("it is a repeating event: expand the repeats in the rota tool first"),
  cancelled_event: N_("it is a cancelled event"),
  several_people: N_("it names more than one person"),
  unknown_role: N_("no on-call role of this department has that name"),
  archived_role: N_("that role is archived"),
  unknown_user: N_("nobody in Rounds has that username or email address"),
  not_a_member: N_("that person is not a member of this department"),
};

/**
 * Show a refusal of the on-call routes: the server's own sentence for the refusals
 * that say what is wrong with this request (a name taken, an archived role, a time),
 * the file's limits in words, otherwise as every screen does (ui.js showError).
 * @param {HTMLElement} el
 * @param {unknown} error
 */
export function showRefusal(el, error) {
  const e = /** @type {Refusal | null} */ (error);
  if (e?.code === "upload_too_large") {
    const limits = /** @type {{max_bytes?: number, max_rows?: number}} */ (e.data || {});
    el.textContent = t("This file is too large to import: at most {size} MiB and {rows} shifts. Split it into smaller files.", {
      size: ((limits.max_bytes || MAX_BYTES) / (1024 * 1024)).toLocaleString(locale()),
      rows: (limits.max_rows || 5000).toLocaleString(locale()),
    });
    el.dataset.code = e.code;
  } else if (e?.code && ["conflict", "invalid_request", "not_a_member"].includes(e.code) && e.message) {
    el.textContent = e.message; // in the language of the page (the server reads its cookie)
    el.dataset.code = e.code;
  } else showError(el, error);
}

/** @param {ImportRow} row */
function refusedItem(row) {
  const reason = row.reason && REASONS[row.reason] ? t(REASONS[row.reason]) : row.reason || "";
  return h("li", { dataset: { line: row.line, reason: row.reason } },
    h("strong", {}, t("Line {line}: refused, {reason}.", { line: row.line, reason })),
    h("div", { class: "sub" }, [row.role, row.person].filter(Boolean).join(" · ")));
}

/**
 * The import card.
 * @param {{base: string, time: () => Clock, say: (item: Coverage, time: Clock) => HTMLElement, changed: () => Promise<void>}} options
 *   `base`: the department's …/oncall path; `time`: the screen's clock; `say`: a gap or
 *   an overlap in words, as the screen says them; `changed`: reload the roster
 */
export function importCard({ base, time, say, changed }) {
  const file = h("input", { type: "file", id: "roster-file", name: "roster", accept: ".csv,.ics,text/csv,text/calendar" });
  const error = h("p", { class: "error", role: "alert", id: "import-error" });
  const status = h("p", { role: "status", id: "import-status" });
  const report = h("div", { class: "stack", id: "import-report" });
  /** @type {{format: "csv" | "ics", content: string} | null} */
  let chosen = null;

  const reset = () => {
    chosen = null;
    file.value = "";
    report.replaceChildren();
  };

  /** @param {ImportRow[]} refused */
  const refusedList = (refused) => [h("h4", {}, t("Refused rows")), h("ul", { id: "import-refused" }, refused.map(refusedItem))];

  /** @param {Coverage[]} gaps @param {Coverage[]} overlaps */
  const coverage = (gaps, overlaps) => {
    const items = [...gaps, ...overlaps].sort((a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at));
    return items.length ? h("ul", { class: "list", id: "import-coverage" }, items.map((item) => say(item, time())))
      : h("p", { class: "muted" }, t("No gap and no overlap over these dates."));
  };

  /** @param {RosterImport} found */
  const show = (found) => {
    const { counts } = found;
    const refused = found.rows.filter((row) => row.status === "refused");
    const adding = found.rows.filter((row) => row.status === "accepted");
    report.replaceChildren(h("div", { class: "stack" },
      h("h3", {}, t("What this file would do")),
      h("ul", { id: "import-counts", dataset: { accepted: counts.accepted, unchanged: counts.unchanged, refused: counts.refused } },
        h("li", {}, tn(counts.rows, "{count} row read", "{count} rows read")),
        h("li", {}, tn(counts.accepted, "{count} shift to add", "{count} shifts to add")),
        h("li", {}, tn(counts.unchanged, "{count} shift already on the roster", "{count} shifts already on the roster")),
        h("li", {}, tn(counts.refused, "{count} row refused", "{count} rows refused"))),
      refused.length ? refusedList(refused) : null,
      adding.length ? h("details", {}, h("summary", {}, t("Shifts to add")), h("ul", { id: "import-adding" }, adding.map((row) => h("li", {},
        t("Line {line}: {role} · {name} · {when}", {
          line: row.line, role: row.role, name: row.user?.display_name || row.person,
          when: row.starts_at && row.ends_at ? time().span(row.starts_at, row.ends_at) : "",
        }))))) : null,
      found.start && found.end ? [h("h4", {}, t("The roster after this import, {when}", { when: time().span(found.start, found.end) })),
        coverage(found.gaps, found.overlaps)] : null,
      refused.length ? h("p", { class: "notice" }, t("Nothing is imported while a row is refused: correct the file, then choose it again."))
        : !counts.accepted ? h("p", { class: "notice" }, t("Every shift of this file is already on the roster: nothing to import."))
          : h("div", { class: "row" },
            h("button", { type: "button", onclick: () => { reset(); status.textContent = ""; } }, t("Cancel")),
            h("button", { type: "button", class: "primary", id: "commit-import", onclick: commit }, t("Commit import")))));
  };

  const preview = async () => {
    showRefusal(error, null);
    report.replaceChildren();
    status.textContent = "";
    const picked = file.files?.[0];
    if (!picked) return;
    if (picked.size > MAX_BYTES) {
      showRefusal(error, { code: "upload_too_large", message: "", data: {} });
      return;
    }
    const content = await picked.text();
    const format = /\.ics$/i.test(picked.name) || /^\s*BEGIN:VCALENDAR/i.test(content) ? "ics" : "csv";
    chosen = { format, content };
    status.textContent = t("Checking the file…");
    try {
      show(await post(`${base}/import/preview`, chosen));
      status.textContent = t("Nothing is saved yet.");
    } catch (e) {
      status.textContent = "";
      showRefusal(error, e);
    }
  };

  const commit = async () => {
    if (!chosen) return;
    showRefusal(error, null);
    status.textContent = t("Importing…");
    try {
      /** @type {RosterImport} */
      const done = await post(`${base}/import`, chosen);
      reset();
      status.textContent = tn(done.counts.accepted, "{count} shift imported.", "{count} shifts imported.");
      toast(status.textContent);
      await changed();
    } catch (e) {
      status.textContent = "";
      const refusal = /** @type {Refusal & {data?: {refused?: number, rows?: ImportRow[]}}} */ (e);
      if (refusal.code !== "roster_refused") {
        showRefusal(error, e);
        return;
      }
      // Someone left, or a role was archived, since the preview: nothing was written.
      error.textContent = tn(refusal.data?.refused ?? 0, "Nothing was imported: {count} row is refused now. Correct the file, then choose it again.",
        "Nothing was imported: {count} rows are refused now. Correct the file, then choose it again.");
      error.dataset.code = refusal.code;
      report.replaceChildren(...refusedList(refusal.data?.rows || []));
      chosen = null;
    }
  };

  file.addEventListener("change", () => preview().catch((e) => showRefusal(error, e)));
  return h("details", { class: "card", id: "import-box" }, h("summary", {}, t("Import a roster file (CSV or .ics)")),
    h("div", { class: "stack" },
      h("p", { class: "muted" }, t("A CSV file with the columns role, username, start, end, or an iCalendar (.ics) file with one event per shift. You see what it would do before anything is saved.")),
      h("div", {}, h("label", { for: "roster-file" }, t("Roster file")), file),
      error, status, report));
}
