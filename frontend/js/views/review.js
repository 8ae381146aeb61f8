// @ts-check
// The department head's weekly case review: the week's photos of the
// department (library query by department and capture dates, every page),
// grouped by patient here in the browser, patients with the most recent
// photo first. A week picker, with the previous and next week one tap away.
// Each case (patient) shows its "reviewed" mark and its comments (reviewcase.js);
// Print lays the week out for the staff meeting (css/print.css, media="print").
import { get } from "../api.js";
import { ImageUrls, keywords } from "../photos/photos.js";
import { h, explain, birthDate, patientLabel } from "../ui.js";
import { libraryTile } from "./library.js";
import { comments, loadMarks, markControl } from "./reviewcase.js";
import { locale, t, tn } from "../i18n.js";

/** @import { LibraryItem, PhotoPage } from "../types/api.js" */

const PAGE = 200;
const MAX_PAGES = 20; // 4,000 photos in a week is beyond any department; stop there and say so

/** ISO week "2026-W48" of a date. @param {Date} date */
export function isoWeek(date) {
  const d = new Date(Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()));
  const day = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - day);
  const year = d.getUTCFullYear();
  const week = Math.ceil(((d.getTime() - Date.UTC(year, 0, 1)) / 86400000 + 1) / 7);
  return `${year}-W${String(week).padStart(2, "0")}`;
}

/** Monday and Sunday ("YYYY-MM-DD") of an ISO week. @param {string} week @returns {[string, string]} */
export function weekDays(week) {
  const match = /^(\d{4})-W(\d\d)$/.exec(week);
  if (!match) throw new RangeError(`not an ISO week: ${week}`);
  const [, year, number] = match.map(Number);
  const jan4 = new Date(Date.UTC(year, 0, 4));
  const monday = new Date(jan4);
  monday.setUTCDate(jan4.getUTCDate() - ((jan4.getUTCDay() || 7) - 1) + (number - 1) * 7);
  const sunday = new Date(monday);
  sunday.setUTCDate(monday.getUTCDate() + 6);
  const iso = (/** @type {Date} */ d) => d.toISOString().slice(0, 10);
  return [iso(monday), iso(sunday)];
}

/** @param {string} week @param {number} by weeks, forward or back */
function shiftWeek(week, by) {
  const [monday] = weekDays(week);
  const d = new Date(`${monday}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 7 * by);
  return isoWeek(new Date(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}

const longDate = (/** @type {string} */ iso) => new Date(`${iso}T12:00:00`).toLocaleDateString(locale(), { day: "numeric", month: "short", year: "numeric" });

/**
 * @param {import("../app.js").App} app
 * @param {number} departmentId
 * @param {URLSearchParams} query the `?a=b` part of the route
 */
export function render(app, departmentId, query) {
  const urls = new ImageUrls();
  const department = app.session.departments.get(departmentId);
  const requested = query.get("week");
  let week = requested && /^\d{4}-W\d\d$/.test(requested) ? requested : isoWeek(new Date());
  const picker = h("input", { type: "week", id: "review-week", name: "week", value: week });
  const range = h("p", { class: "muted", id: "review-range" });
  const status = h("p", { class: "muted", role: "status" });
  const groups = h("div", { class: "stack", id: "review-groups", "aria-live": "polite" });
  // Printed only: the week and department on the paper, where the picker is not.
  const printed = h("h2", { class: "print-only", id: "review-print-title", hidden: true });
  let generation = 0;

  const load = async () => {
    const mine = ++generation;
    picker.value = week;
    history.replaceState(null, "", `#/d/${departmentId}/review?week=${week}`);
    const [from, to] = weekDays(week);
    range.textContent = t("Monday {from} to Sunday {to}", { from: longDate(from), to: longDate(to) });
    const name = app.session.departments.get(departmentId)?.name ?? "";
    printed.textContent = name
      ? t("Weekly photo review — {department} · {week} · {range}", { department: name, week, range: range.textContent })
      : t("Weekly photo review · {week} · {range}", { week, range: range.textContent });
    status.textContent = t("Loading the week's photos…");
    groups.replaceChildren();
    try {
      const [list, marks] = await Promise.all([keywords().catch(() => []), loadMarks(departmentId, week)]);
      /** @type {LibraryItem[]} */
      const items = [];
      /** @type {string | null} */
      let cursor = null;
      let pages = 0;
      do {
        const params = new URLSearchParams({ department: String(departmentId), date_from: from, date_to: to, limit: String(PAGE) });
        if (cursor) params.set("cursor", cursor);
        /** @type {PhotoPage} */
        const page = await get(`/api/library/photos?${params}`);
        if (mine !== generation) return;
        items.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor && ++pages < MAX_PAGES);
      const byPatient = new Map();
      for (const item of items) {
        if (!byPatient.has(item.patient.id)) byPatient.set(item.patient.id, { patient: item.patient, items: [] });
        byPatient.get(item.patient.id).items.push(item);
      }
      const patients = tn(byPatient.size, "{count} patient", "{count} patients");
      if (!items.length) status.textContent = t("No photo was taken in this department this week.");
      else if (cursor) {
        status.textContent = tn(items.length, "{count} photo of {patients} (the first ones only: narrow the period).",
          "{count} photos of {patients} (the first ones only: narrow the period).", { patients });
      } else status.textContent = tn(items.length, "{count} photo of {patients}.", "{count} photos of {patients}.", { patients });
      groups.replaceChildren(...[...byPatient.values()].map(({ patient, items: photos }) => h("section", {
        class: "card stack review-patient", "aria-labelledby": `rp-${patient.id}`, dataset: { patient: patient.id },
      },
      h("div", { class: "row" },
        h("h3", { id: `rp-${patient.id}`, class: "grow" }, patientLabel(patient),
          h("span", { class: "sub" }, " · ", t("born {date} · IPP {ipp}", { date: birthDate(patient.birth_date), ipp: patient.ipp }))),
        h("a", { class: "button", href: `#/library?patient=${patient.id}` }, t("All photos"))),
      h("p", { class: "muted" }, tn(photos.length, "{count} photo this week", "{count} photos this week")),
      markControl(app, { departmentId, week, patientId: patient.id, marks }),
      h("ul", { class: "grid" }, photos.map((/** @type {LibraryItem} */ item) => libraryTile(app, urls, item, { showPatient: false, list }))),
      comments(app, { departmentId, week, patientId: patient.id }))));
    } catch (error) {
      if (mine === generation) status.textContent = explain(error);
    }
  };

  picker.addEventListener("change", () => {
    if (/^\d{4}-W\d\d$/.test(picker.value)) {
      week = picker.value;
      load();
    }
  });
  const step = (/** @type {number} */ by, /** @type {string} */ label) => h("button", { type: "button", onclick: () => {
    week = shiftWeek(week, by);
    load();
  } }, label);
  const controls = h("div", { class: "card stack" },
    h("div", {}, h("label", { for: "review-week" }, t("Week")), picker),
    range,
    h("div", { class: "row" }, step(-1, t("‹ Previous week")), step(1, t("Next week ›")),
      h("button", { type: "button", id: "review-print", onclick: () => window.print() }, t("Print"))));
  load();
  const el = h("div", { class: "stack weekly-review" }, printed, controls, status, groups);
  if (!department) {
    // Opened by its address before the socket's hello named the departments: titled once it has.
    app.socket?.ready().then(() => {
      const named = app.state?.departments.get(departmentId);
      if (named) app.retitle(el, t("Weekly review — {department}", { department: named.name }));
    }).catch(() => {});
  }
  const title = department ? t("Weekly review — {department}", { department: department.name }) : t("Weekly review");
  return { el, title, back: true, unmount: () => urls.revoke() };
}
