// @ts-check
// One review case in the compliance console: its reference, reason and scope,
// the threads it covers (by patient), and the compliance key file. The file is
// read in this browser (adminkey.js withInstitutionKey: 128 hex digits, its
// fingerprint the PINNED compliance one, wiped in a finally), used once to
// open the room key wraps of the departments the case covers (after their
// chain and key versions verify: compliance/reader.js), and never sent. The
// room keys opened stay in memory for this sign-in; each thread's timeline is
// views/compliancethread.js. A closed case, or one awaiting its second
// officer, releases nothing: the server's refusal is shown with its code.
import { get } from "../api.js";
import { withInstitutionKey } from "../adminkey.js";
import { h, birthDate, explain, fullTime, patientLabel, showError } from "../ui.js";
import { caseStatus, scopeText } from "./compliance.js";
import { t, tn } from "../i18n.js";

const PATH = "/api/compliance/cases";

/** @import { Case, CaseThread, CaseThreads, PatientIdentity, Refusal, Timeline } from "../types/api.js" */
/** @import { VerifiedDepartment } from "../compliance/reader.js" */

/** The patient of a released thread: an object with its identity (or, from an older server, an id). @param {PatientIdentity | number} patient */
export function patientText(patient) {
  if (patient && typeof patient === "object") {
    return t("{patient} · IPP {ipp} · born {date}", { patient: patientLabel(patient), ipp: patient.ipp, date: birthDate(patient.birth_date) });
  }
  return t("Patient no. {number}", { number: patient });
}

/** The case as its opener sees it, from the listing (there is no route for one case). @param {number} id */
export async function findCase(id) {
  /** @type {Case[]} */
  const cases = await get(`${PATH}`);
  const found = cases.find((c) => c.id === id);
  if (!found) throw Object.assign(new Error("Not found, or not one of your cases."), { code: "not_found" });
  return found;
}

/**
 * The compliance key file form. `departments()` resolves to the verified departments
 * (reader.verifyDepartment) whose wraps to open; `done(result)` is told {opened, refused}.
 * @param {import("../app.js").App} app
 * @param {() => Promise<VerifiedDepartment[]>} departments
 * @param {(result: {opened: number, refused: number}) => void} done
 */
export function keyForm(app, departments, done) {
  const file = h("input", { id: "compliance-key-file", name: "compliance_key", type: "file", accept: ".key,text/plain" });
  const problem = h("p", { class: "error", role: "alert", id: "key-error" });
  const submit = h("button", { type: "submit", class: "primary", id: "load-key" }, t("Open with this key"));
  file.addEventListener("change", () => showError(problem, null));
  return h("form", {
    class: "card stack", id: "key-form", "aria-labelledby": "key-title",
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      showError(problem, null);
      submit.disabled = true;
      try {
        const verified = await departments();
        const result = await withInstitutionKey("compliance", file.files?.[0], app.pins?.compliance,
          (identity) => app.review.unwrap(identity, verified));
        done(result);
      } catch (error) {
        showError(problem, error); // the key file's refusals say what was not done
      } finally {
        file.value = ""; // the File goes with it: nothing of the key is kept
        submit.disabled = false;
      }
    },
  },
  h("h2", { id: "key-title" }, t("Compliance key")),
  h("div", {}, h("label", { for: "compliance-key-file" }, t("The institution's compliance key file")), file,
    h("p", { class: "muted" }, t("Read in this browser only: checked against the key IT pinned, used to open this case's conversation keys, then wiped. It is never sent to the server."))),
  problem, submit);
}

/**
 * @param {import("../app.js").App} app
 * @param {number} caseId
 */
export function render(app, caseId) {
  const head = h("div", { class: "card stack", id: "case-head" }, h("p", { class: "loading" }, t("Loading the case…")));
  const problem = h("p", { class: "error", role: "alert", id: "case-release-error" });
  const threads = h("ul", { class: "list", id: "case-threads", "aria-label": t("Threads this case covers") });
  const keyStatus = h("p", { role: "status", id: "key-status" });
  const keyBox = h("div", { class: "stack" });
  /** @type {CaseThread[]} */
  let listed = [];

  const describeKeys = () => {
    const held = [...app.review.keys.values()].reduce((n, m) => n + m.size, 0);
    if (held) {
      keyStatus.textContent = tn(held, "{count} conversation key opened; the compliance key file was wiped.",
        "{count} conversation keys opened; the compliance key file was wiped.");
    }
  };

  // One timeline page per department (limit 1) gives its chain, key versions and wraps.
  const departments = async () => {
    const firsts = new Map();
    for (const thread of listed) if (!firsts.has(thread.department)) firsts.set(thread.department, thread.id);
    const verified = [];
    for (const threadId of firsts.values()) {
      /** @type {Timeline} */
      const page = await get(`${PATH}/${caseId}/threads/${threadId}/timeline?limit=1`);
      verified.push(await app.review.verifyDepartment(page.department));
    }
    return verified;
  };

  const draw = async () => {
    let item;
    try {
      item = await findCase(caseId);
    } catch (error) {
      head.replaceChildren(h("p", { class: "error", role: "alert" }, explain(error)));
      return;
    }
    const [kind, text] = caseStatus(item);
    head.dataset.status = kind;
    head.replaceChildren(h("h2", {}, item.reference), h("p", { class: "sub" }, text), h("p", { class: "case-reason" }, item.reason),
      h("p", { class: "sub" }, t("Scope: {scope}", { scope: scopeText(item.scope) })));
    app.retitle(el, t("Case {reference}", { reference: item.reference }));
    try {
      /** @type {CaseThreads} */
      const answer = await get(`${PATH}/${caseId}/threads`);
      listed = answer.threads;
    } catch (error) {
      showError(problem, error);
      const refusal = /** @type {Refusal} */ (error);
      if (refusal.status) problem.textContent = `${refusal.message} (${refusal.code})`; // the server's sentence, in the chosen language
      return;
    }
    threads.replaceChildren(...(listed.length ? listed.map((thread) => h("li", {}, h("a", {
      href: `#/compliance/c/${caseId}/t/${thread.id}`, dataset: { thread: thread.id },
    }, h("span", { class: "grow" }, h("strong", {}, thread.title),
      h("div", { class: "sub" }, patientText(thread.patient)),
      h("div", { class: "sub" }, thread.closed_at
        ? t("Department no. {number} · opened {time} · closed", { number: thread.department, time: fullTime(thread.created_at) })
        : t("Department no. {number} · opened {time}", { number: thread.department, time: fullTime(thread.created_at) }))))))
      : [h("li", { class: "muted" }, t("This case covers no thread."))]));
    if (listed.length) {
      keyBox.replaceChildren(keyForm(app, departments, ({ opened, refused }) => {
        describeKeys();
        if (refused) {
          const why = tn(refused, "{count} could not be opened: the timeline says why.", "{count} could not be opened: the timeline says why.");
          keyStatus.textContent = keyStatus.textContent ? `${keyStatus.textContent} ${why}` : why;
        }
        if (!opened && !refused) keyStatus.textContent = t("Every conversation key of this case was already open.");
      }));
      describeKeys();
    }
  };
  draw();

  const el = h("div", { class: "stack", id: "compliance-case" }, head, problem, keyBox, keyStatus,
    h("h2", {}, t("Threads")), threads,
    h("a", { class: "button", href: `#/library?case=${caseId}` }, t("Photos of this case")));
  return { el, title: t("Case"), back: true };
}
