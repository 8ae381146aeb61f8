// @ts-check
// One case of the weekly review (a patient's photos of one week in one department):
// its "reviewed" mark, set by a head, and its comments. A comment is an ordinary
// message in the patient's conversation titled "Weekly review" in the department,
// its text starting with the week ("Weekly review 2026-W49: …"): sealed under the
// room key and signed like any message, so the week it is about cannot be changed by
// the server, and it is read, retained and released for compliance as every message is.
import { get, post, put, del } from "../api.js";
import { h, explain, dayTime } from "../ui.js";
import { t } from "../i18n.js";

/** @import { Thread } from "../types/api.js" */
/**
 * @typedef {{patient: number, by: {id: number, username: string, display_name: string}, at: string}} ReviewMark
 * @typedef {{department: number, week: string, marks: ReviewMark[]}} ReviewMarks
 */

// The conversation's title and the comments' prefix are data, the same in every language.
export const COMMENT_THREAD = "Weekly review";
const HISTORY_PAGES = 10; // 500 messages back in the review conversation: years of weekly comments

/** @param {string} week */
const prefix = (week) => `${COMMENT_THREAD} ${week}: `;

/** @param {number} departmentId @param {string} week */
const marksPath = (departmentId, week) => `/api/library/departments/${departmentId}/reviews/${week}`;

/** The week's marks by patient id. @param {number} departmentId @param {string} week @returns {Promise<Map<number, ReviewMark>>} */
export async function loadMarks(departmentId, week) {
  /** @type {ReviewMarks} */
  const answer = await get(marksPath(departmentId, week));
  return new Map(answer.marks.map((m) => [m.patient, m]));
}

/**
 * The mark of a case: who marked it reviewed and when; for a head, the button that sets or clears it.
 * @param {import("../app.js").App} app
 * @param {{departmentId: number, week: string, patientId: number, marks: Map<number, ReviewMark>}} options
 */
export function markControl(app, { departmentId, week, patientId, marks }) {
  const el = h("div", { class: "row review-mark" });
  const head = app.session.isHead(departmentId);
  const show = (/** @type {string} */ problem = "") => {
    const mark = marks.get(patientId);
    el.replaceChildren(...[
      h("span", { class: mark ? "tag review-reviewed" : "muted review-pending" },
        mark ? t("Reviewed by {name}, {time}", { name: mark.by.display_name, time: dayTime(mark.at) }) : t("Not reviewed yet")),
      head ? h("button", { type: "button", class: mark ? "" : "primary", onclick: toggle, "aria-pressed": mark ? "true" : "false" },
        mark ? t("Unmark reviewed") : t("Mark reviewed")) : null,
      problem ? h("span", { class: "error", role: "alert" }, problem) : null,
    ].filter((child) => child !== null));
  };
  const toggle = async () => {
    const path = `${marksPath(departmentId, week)}/patients/${patientId}`;
    try {
      /** @type {ReviewMarks} */
      const answer = marks.has(patientId) ? await del(path) : await put(path, {});
      marks.clear();
      for (const m of answer.marks) marks.set(m.patient, m);
      show();
    } catch (error) {
      show(explain(error));
    }
  };
  show();
  return el;
}

/**
 * The comments of a case for its week, decrypted here, and a box to add one.
 * @param {import("../app.js").App} app
 * @param {{departmentId: number, week: string, patientId: number}} options
 */
export function comments(app, { departmentId, week, patientId }) {
  const list = h("ul", { class: "stack review-comments", "aria-label": t("Comments") });
  const status = h("p", { class: "muted", role: "status" });
  const text = h("textarea", { id: `rc-${patientId}`, name: "comment", rows: 2, maxlength: 4000, required: true });
  const threads = () => [...app.session.threads.values()]
    .filter((thread) => thread.department === departmentId && thread.patient === patientId && thread.title === COMMENT_THREAD)
    .sort((a, b) => b.created_at.localeCompare(a.created_at));

  const load = async () => {
    await app.session.loadDepartment(departmentId);
    const found = [];
    for (const thread of threads()) {
      let before = null;
      for (let page = 0; page < HISTORY_PAGES; page++) {
        const history = await app.loadHistory(thread.id, before);
        if (!history.messages.length || !history.has_more) break;
        before = Math.min(...history.messages.map((m) => m.seq));
      }
      for (const entry of app.session.threadMessages(thread.id).values()) {
        if (typeof entry.text === "string" && entry.text.startsWith(prefix(week))) found.push(entry);
      }
    }
    found.sort((a, b) => a.created_at.localeCompare(b.created_at));
    list.replaceChildren(...found.map((entry) => h("li", { class: "review-comment" },
      h("span", { class: "sub" }, t("{name}, {time}:", { name: app.session.displayName(departmentId, entry.sender), time: dayTime(entry.created_at) }), " "),
      entry.text?.slice(prefix(week).length))));
    status.textContent = found.length ? "" : t("No comment yet.");
  };

  const add = async (/** @type {SubmitEvent} */ event) => {
    event.preventDefault();
    const comment = text.value.trim();
    if (!comment) return;
    try {
      // The most recent open "Weekly review" conversation of the patient here, or a new one.
      let thread = threads().find((open) => !open.closed_at);
      if (!thread) {
        /** @type {Thread} */
        const created = await post("/api/threads", { department: departmentId, patient: patientId, title: COMMENT_THREAD });
        app.session.threads.set(created.id, created);
        thread = created;
      }
      status.textContent = t("Sending…");
      await app.send(thread.id, prefix(week) + comment);
      text.value = "";
      await load();
    } catch (error) {
      status.textContent = explain(error);
    }
  };

  load().catch((error) => { status.textContent = explain(error); });
  return h("div", { class: "stack review-case-comments" },
    list, status,
    h("form", { class: "stack review-comment-form", onsubmit: add },
      h("label", { for: `rc-${patientId}` }, t("Comment (end-to-end encrypted, in the patient's “Weekly review” conversation)")),
      text,
      h("button", { type: "submit" }, t("Add comment"))));
}
