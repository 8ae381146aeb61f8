// @ts-check
// Consults across departments in this browser (docs/advice.md, "Consults";
// docs/crypto.md §14): asking another department's on-call role about a
// patient, the question held here until the department opens the consult
// (it is then posted in the consult's thread under its thread key), opening
// one as the member it was put to, ending one, and the guest's list of their
// consults. The guest is no member of the department: the consult's thread is
// put among this session's threads from the consult itself, so the
// conversation screen reads and writes it like any other.
import { get, post } from "./api.js";
import { remember } from "./advice.js";
import { t } from "./i18n.js";
import { sendPhotos } from "./photos/photos.js";
import { h, explain, patientLabel, shortTime, toast } from "./ui.js";

/** @import { App, SignedIn } from "./app.js" */
/** @import { AdviceRequest, Priority } from "./types/api.js" */
/** @import { Consult } from "./e2e/consults.js" */
/** @import { PreparedPhoto } from "./photos/prepare.js" */

/**
 * What the requester wrote, held in memory until the consult opens.
 * @typedef {{text: string, photos: PreparedPhoto[], keywords: string[], consent: string}} Question
 */

/** Questions awaiting their consult's opening, per signed-in state: thread → question. @type {WeakMap<object, Map<number, Question>>} */
const waiting = new WeakMap();
/** Threads whose question is being posted now (a consult.updated and the screen may both try). @type {Set<number>} */
const posting = new Set();

/** @param {App} app */
function questions(app) {
  let found = waiting.get(app.session);
  if (!found) waiting.set(app.session, (found = new Map()));
  return found;
}

/** @param {App} app @param {number} thread */
export function heldQuestion(app, thread) {
  return questions(app).get(thread) ?? null;
}

/**
 * The departments I may ask for a consult, with their on-call roles.
 * @returns {Promise<{id: number, name: string, roles: {id: number, name: string}[]}[]>}
 */
export async function targets() {
  return (await get("/api/consults/targets")).departments;
}

/**
 * Keep a consult's thread among the session's threads (a guest's is in none of their departments).
 * @param {App} app
 * @param {Consult} consult
 */
export function keepThread(app, consult) {
  const state = app.session;
  const held = state.threads.get(consult.thread);
  state.threads.set(consult.thread, {
    last_seq: 0, created_by: consult.guest.id, created_at: consult.opened_at ?? "", ...held,
    id: consult.thread, department: consult.department, patient: consult.patient, title: consult.title,
    closed_at: null, consult,
  });
  app.endToEnd.consults.seen(consult);
}

/**
 * The consult of a thread not in my departments, as its guest: kept (keepThread), or null.
 * @param {App} app
 * @param {number} thread
 */
export async function guestThread(app, thread) {
  const consult = await app.endToEnd.consults.of(thread, { fresh: true });
  if (!consult || consult.guest.id !== app.session.user.id) return null;
  keepThread(app, consult);
  return app.session.threads.get(thread);
}

/**
 * Ask another department's role about a patient: the request, the question kept here
 * until the consult opens (postWhenOpen).
 * @param {App} app
 * @param {{department: number, patient: number, priority: Priority, to: {to_role: number} | {to_user: number}, question: Question}} asked
 * @returns {Promise<AdviceRequest>}
 */
export async function askConsult(app, { department, patient, priority, to, question }) {
  /** @type {AdviceRequest} */
  const request = await post("/api/advice", { consult: { department, patient }, priority, ...to });
  remember(app, request);
  questions(app).set(request.thread, question);
  watch(app);
  return request;
}

/**
 * Post the held question in the consult's thread once it is open; true when posted now.
 * @param {App} app
 * @param {Consult} consult
 */
export async function postWhenOpen(app, consult) {
  const question = heldQuestion(app, consult.thread);
  if (!question || consult.state !== "open" || posting.has(consult.thread)) return false;
  posting.add(consult.thread);
  try {
    keepThread(app, consult);
    if (question.photos.length) {
      await sendPhotos(/** @type {SignedIn} */ (app), consult.thread, question.photos,
        { keywords: question.keywords, consent: question.consent, text: question.text });
    } else {
      await app.send(consult.thread, question.text);
    }
    questions(app).delete(consult.thread);
    return true;
  } finally {
    posting.delete(consult.thread);
  }
}

/** The session's listener for consults opening while a question waits (once per session). @type {WeakSet<object>} */
const watched = new WeakSet();

/** @param {App} app */
function watch(app) {
  const state = app.session;
  if (watched.has(state)) return;
  watched.add(state);
  state.addEventListener("change", (event) => {
    const detail = /** @type {CustomEvent<{what: string, frame?: {consult: Consult}}>} */ (event).detail;
    if (detail.what !== "consult.updated" || !detail.frame || app.state !== state) return;
    const consult = detail.frame.consult;
    if (consult.guest.id !== state.user.id || !heldQuestion(app, consult.thread)) return;
    postWhenOpen(app, consult).then((posted) => {
      if (posted && location.hash === `#/r/${requestOf(app, consult.thread)}`) app.go(`#/t/${consult.thread}`);
    }).catch((e) => toast(t("Your question was not posted in the consult: {reason}", { reason: explain(e) })));
  });
}

/** @type {WeakMap<object, Map<number, number>>} thread → its request's id, per session */
const requests = new WeakMap();

/** @param {App} app @param {number} thread @param {number} [id] */
export function requestOf(app, thread, id) {
  let map = requests.get(app.session);
  if (!map) requests.set(app.session, (map = new Map()));
  if (id !== undefined) map.set(thread, id);
  return map.get(thread) ?? null;
}

/**
 * As a member the consult was put to: sign its guest in and make its key, then keep its thread.
 * @param {App} app
 * @param {number} thread
 */
export async function openConsult(app, thread) {
  const consult = await app.endToEnd.consults.open(thread);
  await app.session.loadDepartment(consult.department, { force: true });
  return consult;
}

/**
 * End a consult (its guest, or a member): the guest is signed out of the thread.
 * @param {App} app
 * @param {number} thread
 */
export async function endConsult(app, thread) {
  const consult = await app.endToEnd.consults.end(thread);
  const held = app.session.threads.get(thread);
  if (held) held.consult = consult;
  return consult;
}

/**
 * The home screen's "My consults": those I am the guest of, each opening its thread
 * (or, while pending, saying so). Hidden while there are none.
 * @param {App} app
 */
export function consultsSection(app) {
  const list = h("ul", { class: "list", id: "my-consults", "aria-labelledby": "my-consults-title" });
  const section = h("section", { class: "stack", hidden: true }, h("h2", { id: "my-consults-title" }, t("My consults")), list);
  const STATES = { pending: () => t("Waiting for the department to open it"), open: () => t("Open"), ended: () => t("Ended") };
  const draw = async () => {
    /** @type {Consult[]} */
    const consults = (await get("/api/consults")).consults;
    section.hidden = !consults.length;
    list.replaceChildren(...consults.map((consult) => {
      app.endToEnd.consults.seen(consult);
      if (consult.state !== "pending") keepThread(app, consult);
      const patient = h("strong", {}, consult.title);
      app.session.patient(consult.patient).then((p) => (patient.textContent = t("{patient} · {subject}", { patient: patientLabel(p), subject: consult.title }))).catch(() => {});
      const line = h("div", { class: "sub" }, STATES[consult.state](), consult.opened_at ? ` · ${shortTime(consult.opened_at)}` : "");
      const body = h("span", { class: "grow" }, patient, line);
      return h("li", {}, consult.state === "pending" ? h("div", { class: "row", dataset: { consult: consult.thread } }, body)
        : h("a", { href: `#/t/${consult.thread}`, dataset: { consult: consult.thread } }, body));
    }));
  };
  const onChange = (/** @type {Event} */ event) => {
    if (/** @type {CustomEvent<{what: string}>} */ (event).detail.what === "consult.updated") draw().catch(() => {});
  };
  app.session.addEventListener("change", onChange);
  draw().catch(() => {});
  return { el: section, unmount: () => app.session.removeEventListener("change", onChange) };
}
