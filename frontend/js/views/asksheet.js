// @ts-check
// "Ask for advice" from a conversation (docs/browser.md, "Advice requests in the
// browser"): the question, its priority (urgent unless changed) and whom to ask, the
// department's on-call roles first with who is on duty now, then its members. Send
// posts the question as an ordinary message of the thread, encrypted end to end like
// any other, then makes that message a request (POST /api/advice). A request refused
// or lost after the question was posted is sent again for the same message: the
// server answers the one already made, so nothing is asked twice. "Add a photo" sends
// the question with photos through the photo sheet (its caption), and the request is
// made of that message.
//
// "Another department" asks one of its on-call roles for a consult about the thread's
// patient instead (consults.js): nothing is posted here; the question and its photo
// stay in this browser until that department opens the consult, and are then posted
// in the consult's thread.
import { addressees, ask, refusal, PRIORITIES } from "../advice.js";
import { askConsult, requestOf, targets } from "../consults.js";
import { t } from "../i18n.js";
import { h, explain } from "../ui.js";
import { openPhotoSheet } from "./photosheet.js";

/** @import { AdviceRequest, Priority } from "../types/api.js" */
/** @import { App } from "../app.js" */
/** @import { HeldPhotos } from "./photosheet.js" */

/**
 * Radio chips of whom to ask: roles (with who is on duty) first, then colleagues.
 * @param {App} app
 * @param {number} department
 * @param {{name: string, exclude?: number[]}} options the radios' name; people not to offer
 * @returns {{el: HTMLElement, value: () => ({to_role: number} | {to_user: number} | null), label: () => string}}
 */
export function addresseeChoices(app, department, { name, exclude = [] }) {
  const roles = h("div", { class: "chips", id: `${name}-roles` }, h("p", { class: "loading" }, t("Loading…")));
  const people = h("div", { class: "chips", id: `${name}-people` });
  const el = h("fieldset", { class: "choices addressees", id: name },
    h("legend", {}, t("Ask")), roles, h("p", { class: "sub" }, t("Or a colleague")), people);
  addressees(app, department).then(({ roles: found, members }) => {
    roles.replaceChildren(...found.map((role) => h("label", { class: "chip addressee" },
      h("input", { type: "radio", name, value: `role:${role.id}`, dataset: { label: role.name } }),
      h("span", {}, role.name, h("span", { class: "sub on-duty" }, role.on_duty.length
        ? t("on duty: {names}", { names: role.on_duty.map((u) => u.display_name || u.username).join(", ") })
        : t("nobody on duty now"))))));
    if (!found.length) roles.replaceChildren(h("p", { class: "sub" }, t("This department has no on-call role.")));
    people.replaceChildren(...members.filter((m) => !exclude.includes(m.user.id)).map((m) => h("label", { class: "chip" },
      h("input", { type: "radio", name, value: `user:${m.user.id}`, dataset: { label: m.user.display_name || m.user.username } }),
      m.user.display_name || m.user.username)));
  }).catch((e) => roles.replaceChildren(h("p", { class: "error" }, explain(e))));
  const checked = () => /** @type {HTMLInputElement | null} */ (el.querySelector(`input[name="${name}"]:checked`));
  return {
    el,
    value: () => {
      const [kind, id] = (checked()?.value ?? "").split(":");
      if (!id) return null;
      return kind === "role" ? { to_role: Number(id) } : { to_user: Number(id) };
    },
    label: () => checked()?.dataset.label ?? "",
  };
}

/**
 * Another department's on-call roles, one department at a time (consults.js targets).
 * @returns {{el: HTMLElement, value: () => ({department: number, to: {to_role: number}} | null), label: () => string}}
 */
function consultChoices() {
  const select = h("select", { id: "consult-department" });
  const roles = h("div", { class: "chips", id: "consult-roles" });
  const el = h("fieldset", { class: "choices addressees", id: "consult-to", hidden: true },
    h("legend", {}, t("Whom to ask there")), h("label", { for: "consult-department" }, t("Department")), select, roles);
  /** @type {{id: number, name: string, roles: {id: number, name: string}[]}[]} */
  let found = [];
  const drawRoles = () => {
    const department = found.find((d) => String(d.id) === select.value);
    roles.replaceChildren(...(department?.roles ?? []).map((role) => h("label", { class: "chip addressee" },
      h("input", { type: "radio", name: "consult-role", value: String(role.id), dataset: { label: role.name } }), role.name)));
    if (department && !department.roles.length) roles.replaceChildren(h("p", { class: "sub" }, t("This department has no on-call role.")));
  };
  select.addEventListener("change", drawRoles);
  targets().then((departments) => {
    found = departments;
    select.replaceChildren(...departments.map((d) => h("option", { value: String(d.id) }, d.name)));
    drawRoles();
  }).catch((e) => roles.replaceChildren(h("p", { class: "error" }, explain(e))));
  const checked = () => /** @type {HTMLInputElement | null} */ (el.querySelector("input[name=consult-role]:checked"));
  return {
    el,
    value: () => {
      const role = checked()?.value;
      return role ? { department: Number(select.value), to: { to_role: Number(role) } } : null;
    },
    label: () => checked()?.dataset.label ?? "",
  };
}

/**
 * Open the sheet; resolves with the request made, or null when closed without one.
 * @param {App} app
 * @param {number} threadId
 * @param {{text?: string}} [options] text: what the composer held, as the question
 * @returns {Promise<AdviceRequest | null>}
 */
export function openAskSheet(app, threadId, { text = "" } = {}) {
  const department = /** @type {number} */ (app.session.threads.get(threadId)?.department);
  const question = h("textarea", { id: "ask-question", rows: 3, maxlength: 4000, placeholder: t("What do you need to know?") });
  question.value = text;
  const priority = h("fieldset", { class: "choices", id: "ask-priority" }, h("legend", {}, t("Priority")),
    PRIORITIES.map(([value, label]) => h("label", { class: `chip priority-choice ${value}` },
      h("input", { type: "radio", name: "ask-priority", value, checked: value === "urgent" }), t(label))));
  const to = addresseeChoices(app, department, { name: "ask-to" });
  const elsewhere = consultChoices();
  const where = h("fieldset", { class: "choices", id: "ask-where" }, h("legend", {}, t("Whom to ask")),
    h("label", { class: "chip" }, h("input", { type: "radio", name: "ask-where", value: "here", checked: true }), t("This department")),
    h("label", { class: "chip" }, h("input", { type: "radio", name: "ask-where", value: "consult" }), t("Another department")));
  const consulting = () => /** @type {HTMLInputElement} */ (where.querySelector("input[value=consult]")).checked;
  const consultNote = h("p", { class: "muted", id: "ask-consult-note", hidden: true },
    t("The question and photo stay on this device until the department opens the consult; they are then posted in its conversation, encrypted for it."));
  /** @type {HeldPhotos | null} photos kept for a consult's question */
  let held = null;
  const error = h("p", { class: "error", role: "alert", id: "ask-error" });
  const send = h("button", { type: "submit", form: "ask-form", class: "primary", id: "send-ask" }, t("Send request"));
  const photoNote = h("p", { class: "muted", id: "ask-photo-note", hidden: true }, t("Question and photos posted: now choose whom to ask."));
  const addPhoto = h("button", { type: "button", id: "ask-photo" }, t("Add a photo"));
  const form = h("form", { class: "stack", id: "ask-form", "aria-label": t("Ask for advice") },
    h("div", {}, h("label", { for: "ask-question" }, t("Question (encrypted)")), question),
    h("div", { class: "row" }, addPhoto), photoNote, where, consultNote, to.el, elsewhere.el, priority);
  where.addEventListener("change", () => {
    to.el.hidden = consulting();
    elsewhere.el.hidden = consultNote.hidden = !consulting();
  });
  const dialog = h("dialog", { class: "sheet", id: "ask-sheet", "aria-labelledby": "ask-title" },
    h("div", { class: "sheet-body" },
      h("h2", { id: "ask-title" }, t("Ask for advice")),
      h("p", { class: "muted" }, t("Your question is posted in this conversation, encrypted like any message; whoever you ask is alerted until someone answers.")),
      form),
    h("div", { class: "sheet-footer" }, error,
      h("div", { class: "row" }, h("button", { type: "button", onclick: () => dialog.close() }, t("Cancel")), send)));

  /** @type {AdviceRequest | null} */
  let made = null;
  /** @type {number | null} the question's message, once posted */
  let posted = null;
  let busy = false;
  /** @type {(value: AdviceRequest | null) => void} */
  let done;
  /** @type {Promise<AdviceRequest | null>} */
  const finished = new Promise((resolve) => (done = resolve));
  dialog.addEventListener("cancel", (event) => busy && event.preventDefault());
  // The photo sheet posts the question as its caption, with the photos: one message.
  addPhoto.addEventListener("click", () => openPhotoSheet(app, threadId, {
    camera: true, caption: question.value.trim(),
    // For a consult, the photos are held with the question, posted once the consult opens.
    hold: consulting() ? (photos) => {
      held = photos;
      question.value = photos.text;
      question.readOnly = addPhoto.disabled = true;
      where.disabled = true;
      photoNote.textContent = t("Photo kept on this device: now choose whom to ask.");
      photoNote.hidden = false;
    } : undefined,
    onSent: (ack) => {
      where.disabled = true; // posted in this thread: the request can only be this department's
      posted = ack.message_id;
      question.readOnly = addPhoto.disabled = true;
      photoNote.hidden = false;
    },
  }));
  dialog.addEventListener("close", () => {
    dialog.remove();
    done(made);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    const words = question.value.trim();
    if (consulting()) return void sendConsult(words);
    const whom = to.value();
    const level = /** @type {Priority} */ (/** @type {HTMLInputElement} */ (priority.querySelector("input:checked")).value);
    if (!words && posted === null) {
      error.textContent = t("Write your question.");
      question.focus();
      return;
    }
    if (!whom) {
      error.textContent = t("Choose whom to ask.");
      return;
    }
    busy = send.disabled = true;
    error.textContent = "";
    try {
      if (posted === null) posted = (await app.send(threadId, words)).message_id;
      made = await ask(app, posted, level, whom);
      dialog.close();
    } catch (e) {
      error.textContent = posted === null ? t("Not sent: {reason}", { reason: explain(e) })
        : t("Your question is posted but the request was not made: {reason} Send again to retry.", { reason: refusal(e) });
    } finally {
      busy = send.disabled = false;
    }
  });

  /** The consult's request; its question waits in this browser (consults.js). @param {string} words */
  const sendConsult = async (words) => {
    const chosen = elsewhere.value();
    const patient = app.session.threads.get(threadId)?.patient;
    if (!words && !held) {
      error.textContent = t("Write your question.");
      question.focus();
      return;
    }
    if (!chosen || patient === undefined) {
      error.textContent = t("Choose whom to ask.");
      return;
    }
    const level = /** @type {Priority} */ (/** @type {HTMLInputElement} */ (priority.querySelector("input:checked")).value);
    busy = send.disabled = true;
    error.textContent = "";
    try {
      made = await askConsult(app, {
        department: chosen.department, patient, priority: level, to: chosen.to,
        question: { text: held?.text ?? words, photos: held?.photos ?? [], keywords: held?.keywords ?? [], consent: held?.consent ?? "care" },
      });
      requestOf(app, made.thread, made.id);
      dialog.close();
    } catch (e) {
      error.textContent = t("Not sent: {reason}", { reason: refusal(e) });
    } finally {
      busy = send.disabled = false;
    }
  };

  document.body.append(dialog);
  dialog.showModal();
  question.focus();
  return finished;
}
