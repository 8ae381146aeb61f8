// @ts-check
// The compliance console's first screen (docs/compliance.md, "In the
// browser"): an officer's review cases, newest first, with what each awaits;
// "Open a case" (reference, reason, scope: patient by IPP, department, user,
// dates, combined with AND); "Approve" for another officer's case that awaits a
// second officer (four-eyes); "Close" for the opener or the approver. Not the
// clinicians' screens: an officer needs no personal key and no department.
// Reading a case is views/compliancecase.js.
import { get, post } from "../api.js";
import { h, dateField, fullTime, isoDay, showError } from "../ui.js";
import { t } from "../i18n.js";

/** @import { Case, CaseScope, Refusal } from "../types/api.js" */

/**
 * In words, where a case stands: [data-status value, sentence].
 * @param {Case} item
 * @returns {["closed" | "awaiting" | "open", string]}
 */
export function caseStatus(item) {
  if (item.closed_at) return ["closed", t("Closed by {name} {time}", { name: item.closed_by?.username ?? "?", time: fullTime(item.closed_at) })];
  if (item.awaits_approval) return ["awaiting", t("Awaits a second officer's approval")];
  if (item.approved_at) return ["open", t("Open, approved by {name}", { name: item.approved_by?.username ?? "?" })];
  return ["open", t("Open")];
}

/** The scope as a sentence: what the case covers (AND). @param {CaseScope} scope */
export function scopeText(scope) {
  const parts = [];
  // A list of conditions, each translated whole; the list's comma is the same in French.
  if (scope.patient) parts.push(t("patient no. {number}", { number: scope.patient }));
  if (scope.department) parts.push(t("department no. {number}", { number: scope.department }));
  if (scope.user) parts.push(t("user no. {number}", { number: scope.user }));
  if (scope.date_from) parts.push(t("from {time}", { time: fullTime(scope.date_from) }));
  if (scope.date_to) parts.push(t("until {time}", { time: fullTime(scope.date_to) }));
  return parts.join(", ") || t("no scope");
}

/**
 * @param {string} id
 * @param {string} label
 * @param {HTMLElement} input
 * @param {string | null} [hint]
 */
function field(id, label, input, hint = null) {
  return h("div", {}, h("label", { for: id }, label), input, hint ? h("p", { class: "muted", id: `${id}-hint` }, hint) : null);
}

/** A date field's day as an instant with its offset: the start of the day, or its end. @param {string} value YYYY-MM-DD @param {boolean} end */
function dayBound(value, end) {
  if (!value) return null;
  const [y, m, d] = value.split("-").map(Number);
  const when = end ? new Date(y, m - 1, d, 23, 59, 59, 999) : new Date(y, m - 1, d);
  return when.toISOString();
}

/** @param {(opened: Case) => void} onOpened */
function openForm(onOpened) {
  const reference = h("input", { id: "case-reference", name: "reference", required: true, maxlength: 64, autocomplete: "off" });
  const reason = h("textarea", { id: "case-reason", name: "reason", required: true, maxlength: 1000, rows: 3 });
  const ipp = h("input", { id: "case-ipp", name: "ipp", inputmode: "numeric", autocomplete: "off" });
  const department = h("input", { id: "case-department", name: "department", inputmode: "numeric", pattern: "[0-9]+" });
  const user = h("input", { id: "case-user", name: "user", inputmode: "numeric", pattern: "[0-9]+" });
  const from = dateField({ id: "case-from", name: "date_from" });
  const to = dateField({ id: "case-to", name: "date_to" });
  // isoDay() marks a day that is not one invalid, which blocks the form: typing again lifts it.
  for (const day of [from, to]) day.addEventListener("input", () => day.setCustomValidity(""));
  const problem = h("p", { class: "error", role: "alert", id: "case-error" });
  const submit = h("button", { type: "submit", class: "primary", id: "open-case" }, t("Open the case"));
  const form = h("form", {
    class: "stack", "aria-labelledby": "open-case-title",
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      showError(problem, null);
      const fromDay = isoDay(from);
      const toDay = isoDay(to);
      if (fromDay === null || toDay === null) {
        problem.textContent = t("Type the date as dd/mm/yyyy.");
        (fromDay === null ? from : to).focus();
        return;
      }
      /** @type {{reference: string, reason: string, ipp?: string, department?: number, user?: number, date_from?: string | null, date_to?: string | null}} */
      const body = { reference: reference.value, reason: reason.value };
      if (ipp.value.trim()) body.ipp = ipp.value.trim();
      if (department.value.trim()) body.department = Number(department.value);
      if (user.value.trim()) body.user = Number(user.value);
      if (fromDay) body.date_from = dayBound(fromDay, false);
      if (toDay) body.date_to = dayBound(toDay, true);
      submit.disabled = true;
      try {
        /** @type {Case} */
        const opened = await post("/api/compliance/cases", body);
        form.reset();
        onOpened(opened);
      } catch (error) {
        showError(problem, error);
        if (/** @type {Refusal} */ (error).status) problem.textContent = /** @type {Refusal} */ (error).message; // the server names the field at fault
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("h2", { id: "open-case-title" }, t("Open a case")),
  field("case-reference", t("Reference"), reference, t("The request's number, e.g. INC-2026-042. Unique; seen by other officers.")),
  field("case-reason", t("Reason"), reason, t("Name the request (a patient's access request, a complaint…), not the patient's health.")),
  h("fieldset", { class: "choices" }, h("legend", {}, t("Scope (at least one; they combine)")),
    field("case-ipp", t("Patient's IPP"), ipp),
    h("div", { class: "row" }, field("case-department", t("Department no."), department), field("case-user", t("User no."), user)),
    h("div", { class: "row" }, field("case-from", t("From (day)"), from), field("case-to", t("Until (day)"), to))),
  problem, submit);
  return form;
}

/**
 * @param {import("../app.js").App} app
 */
export function render(app) {
  const me = app.session.user;
  const list = h("ul", { class: "list", id: "cases", "aria-label": t("Review cases"), tabindex: "-1" });
  const problem = h("p", { class: "error", role: "alert", id: "cases-error" });
  const status = h("p", { class: "muted", role: "status", id: "cases-status" });

  const act = async (/** @type {string} */ path, /** @type {string} */ done) => {
    showError(problem, null);
    try {
      await post(path);
      status.textContent = done;
      await draw();
    } catch (error) {
      showError(problem, error);
    }
  };

  const item = (/** @type {Case} */ c) => {
    const [kind, text] = caseStatus(c);
    const mine = c.opened_by?.id === me.id;
    const approver = c.approved_by?.id === me.id;
    const actions = [];
    if (mine && kind === "open") actions.push(h("a", { class: "button primary", href: `#/compliance/c/${c.id}`, "aria-label": t("Review case {reference}", { reference: c.reference }) }, t("Review")));
    if (!mine && kind === "awaiting") {
      actions.push(h("button", { type: "button", class: "primary", "aria-label": t("Approve case {reference}", { reference: c.reference }),
        onclick: () => act(`/api/compliance/cases/${c.id}/approve`, t("Case {reference} approved.", { reference: c.reference })) }, t("Approve")));
    }
    if ((mine || approver) && kind !== "closed") {
      actions.push(h("button", { type: "button", class: "danger", "aria-label": t("Close case {reference}", { reference: c.reference }), onclick: () => {
        if (confirm(t("Close case {reference}? A closed case releases nothing more and is never reopened.", { reference: c.reference }))) {
          act(`/api/compliance/cases/${c.id}/close`, t("Case {reference} closed.", { reference: c.reference }));
        }
      } }, t("Close")));
    }
    if (mine && kind === "closed") actions.push(h("a", { class: "button", href: `#/compliance/c/${c.id}`, "aria-label": t("Case {reference}", { reference: c.reference }) }, t("View")));
    return h("li", { class: "card stack", dataset: { case: c.id, reference: c.reference, status: kind } },
      h("div", {}, h("strong", {}, c.reference), h("div", { class: "sub" }, text)),
      h("p", { class: "case-reason" }, c.reason),
      h("p", { class: "sub" }, t("Scope: {scope}", { scope: scopeText(c.scope) })),
      h("p", { class: "sub" }, c.four_eyes
        ? t("Opened by {name} {time} · four-eyes", { name: c.opened_by?.username ?? "?", time: fullTime(c.opened_at) })
        : t("Opened by {name} {time}", { name: c.opened_by?.username ?? "?", time: fullTime(c.opened_at) })),
      actions.length ? h("div", { class: "row" }, actions) : null);
  };

  const draw = async () => {
    try {
      /** @type {Case[]} */
      const cases = await get("/api/compliance/cases");
      list.replaceChildren(...(cases.length ? cases.map(item) : [h("li", { class: "muted" }, t("No case yet."))]));
    } catch (error) {
      showError(problem, error);
    }
  };
  draw();

  const form = openForm((opened) => {
    box.open = false; // the new case shows in the list, above
    status.scrollIntoView({ block: "center" });
    status.textContent = opened.awaits_approval
      ? t("Case {reference} opened. A second compliance officer must approve it before it releases anything.", { reference: opened.reference })
      : t("Case {reference} opened.", { reference: opened.reference });
    draw();
  });
  const box = h("details", { class: "card", id: "open-case-box" }, h("summary", {}, t("Open a case")), form);
  const el = h("div", { class: "stack", id: "compliance" },
    h("p", { class: "muted" }, t("Everything you read here is released under a case and written to the audit trail before it is sent. Messages and photos are decrypted in this browser with the compliance key file, which is never sent to the server.")),
    status, problem,
    h("h2", {}, t("Cases")), list,
    box,
    h("a", { class: "button", href: "#/library" }, t("Photo library (by case)")));
  return { el, title: t("Compliance review"), focus: list };
}
