// @ts-check
// Advice requests in this browser (docs/browser.md, "Advice requests in the browser"):
// the requests this session knows, from GET /api/advice and the socket's
// `advice.updated` events; their words; asking and answering; the alert when one is
// put to me. The question itself is an ordinary thread message, encrypted end to end:
// nothing here ever holds its text, and no alert names the patient.
import { ApiError, get, post } from "./api.js";
import { N_, t } from "./i18n.js";
import { byId, explain, h, patientLabel, shortTime, toast } from "./ui.js";

/** @import { AdviceList, AdviceRequest, AdviceStep, AdviceUpdated, Member, OnCallRole, OnCallRoles, Priority } from "./types/api.js" */
/** @import { App } from "./app.js" */

/** @type {[Priority, string][]} */
export const PRIORITIES = [["routine", N_("Routine")], ["urgent", N_("Urgent")], ["emergency", N_("Emergency")]];
const RANK = { emergency: 0, urgent: 1, routine: 2 };
const ALERTS = {
  routine: N_("Request for advice — {department}"),
  urgent: N_("Urgent request — {department}"),
  emergency: N_("Emergency request — {department}"),
};
// Why the server gave the request to whom it did (advice/routing.py).
const WHY = { on_duty: N_("on duty"), next_shift: N_("next on the roster"), head: N_("head of department") };
const HANDED = ["requested", "escalated", "realerted", "passed"];

/**
 * What this session knows of requests, per signed-in state (dropped with it at sign-out).
 * @typedef {{all: Map<number, AdviceRequest>, mine: Set<number>, departments: Set<number>}} Book
 * @type {WeakMap<object, Book>}
 */
const books = new WeakMap();

/** @param {App} app @returns {Book} */
function book(app) {
  let found = books.get(app.session);
  if (!found) books.set(app.session, (found = { all: new Map(), mine: new Set(), departments: new Set() }));
  return found;
}

/** The words of a priority. @param {Priority} priority */
export function priorityLabel(priority) {
  const found = PRIORITIES.find(([value]) => value === priority);
  return found ? t(found[1]) : priority;
}

/** A priority as a badge (urgent and emergency stand out). @param {Priority} priority */
export function priorityBadge(priority) {
  return h("span", { class: `priority ${priority}`, dataset: { priority } }, priorityLabel(priority));
}

/**
 * Keep a request as the server last described it: an older description (fewer steps,
 * an answer that crossed an event) never replaces a newer one.
 * @param {App} app
 * @param {AdviceRequest} request
 */
export function remember(app, request) {
  const { all, mine } = book(app);
  const known = all.get(request.id);
  if (!known || request.steps >= known.steps) all.set(request.id, request);
  const me = app.session.user.id;
  if (request.requester.id === me || request.holder?.id === me) mine.add(request.id);
}

/** @param {App} app @param {number} id */
export function known(app, id) {
  return book(app).all.get(id) ?? null;
}

/** The request a thread message is the question of, if this browser knows it. @param {App} app @param {number | undefined} messageId */
export function requestOfMessage(app, messageId) {
  if (!messageId) return null;
  for (const request of book(app).all.values()) if (request.message === messageId) return request;
  return null;
}

/** Mine (made by me or put to me), as the server lists them. @param {App} app */
export async function loadMine(app) {
  /** @type {AdviceList} */
  const list = await get("/api/advice");
  for (const request of list.requests) {
    remember(app, request);
    book(app).mine.add(request.id);
  }
}

/** A department's requests, once a session (events keep them current). @param {App} app @param {number} department */
export async function loadDepartment(app, department) {
  const { departments } = book(app);
  if (departments.has(department)) return;
  /** @type {AdviceList} */
  const list = await get(`/api/advice?department=${department}`);
  for (const request of list.requests) remember(app, request);
  departments.add(department);
}

/** My open requests: emergencies, then urgent ones, then routine; newest first. @param {App} app */
export function openMine(app) {
  const { all, mine } = book(app);
  /** @type {AdviceRequest[]} */
  const open = [];
  for (const id of mine) {
    const request = all.get(id);
    if (request?.status === "open") open.push(request);
  }
  return open.sort((a, b) => RANK[a.priority] - RANK[b.priority] || b.created_at.localeCompare(a.created_at));
}

/**
 * The department's active on-call roles (each with who is on duty now), then its
 * members but me by name: whom a request may be put to.
 * @param {App} app
 * @param {number} department
 * @returns {Promise<{roles: OnCallRole[], members: Member[]}>}
 */
export async function addressees(app, department) {
  const me = app.session.user.id;
  const [roles, members] = await Promise.all([
    get(`/api/departments/${department}/oncall/roles`).then((/** @type {OnCallRoles} */ r) => r.roles.filter((role) => role.active)),
    app.session.departmentMembers(department),
  ]);
  return {
    roles,
    members: /** @type {Member[]} */ (members).filter((m) => m.user.id !== me)
      .sort((a, b) => (a.user.display_name || a.user.username).localeCompare(b.user.display_name || b.user.username)),
  };
}

/**
 * POST with the same body again when the network or the server failed: asking, like
 * every answer, is idempotent for the same message (a retry answers 200).
 * @param {string} path
 * @param {object} body
 */
async function postAgain(path, body) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await post(path, body);
    } catch (error) {
      const status = /** @type {ApiError} */ (error).status;
      if (!(error instanceof ApiError) || (status !== 0 && status < 500) || attempt >= 4) throw error;
      await new Promise((resolve) => setTimeout(resolve, 400 * attempt));
    }
  }
}

/**
 * Make my message, already posted, a request.
 * @param {App} app
 * @param {number} messageId
 * @param {Priority} priority
 * @param {{to_role: number} | {to_user: number}} to
 * @returns {Promise<AdviceRequest>}
 */
export async function ask(app, messageId, priority, to) {
  /** @type {AdviceRequest} */
  const request = await postAgain("/api/advice", { message: messageId, priority, ...to });
  remember(app, request);
  return request;
}

/**
 * Answer, pass on or withdraw (advice/api.py).
 * @param {App} app
 * @param {number} id
 * @param {"acknowledge" | "pass" | "cancel"} verb
 * @param {object} [body]
 * @returns {Promise<AdviceRequest>}
 */
export async function act(app, id, verb, body = {}) {
  /** @type {AdviceRequest} */
  const request = await post(`/api/advice/${id}/${verb}`, body);
  remember(app, request);
  return request;
}

/** A refusal in words: the server's own sentence for a request's refusals (who may answer, already answered). @param {unknown} error */
export function refusal(error) {
  const e = /** @type {ApiError} */ (error);
  return e instanceof ApiError && [400, 403, 404, 409, 422].includes(e.status) && e.message ? e.message : explain(error);
}

/** @param {{display_name?: string, username: string} | null | undefined} card */
export function personName(card) {
  return card ? card.display_name || card.username : t("a colleague");
}

/**
 * Whom a step's `to` names, from the names this screen has.
 * @param {App} app
 * @param {AdviceRequest} request
 * @param {{role?: number, user?: number} | undefined} to
 * @param {Map<number, string>} roleNames
 */
function toName(app, request, to, roleNames) {
  if (to?.role) return roleNames.get(to.role) ?? (request.to.role?.id === to.role ? request.to.role.name : t("an on-call role"));
  if (to?.user) return app.session.displayName(request.department, { id: to.user, username: "" }) || t("a colleague");
  return t("a colleague");
}

/** "Dr Bob Martin (on duty)". @param {AdviceStep} step */
function heldBy(step) {
  const name = personName(step.holder);
  const why = WHY[/** @type {keyof typeof WHY} */ (step.data.why)];
  return why ? t("{name} ({why})", { name, why: t(why) }) : name;
}

/**
 * One line of the timeline, in words.
 * @param {App} app
 * @param {AdviceRequest} request
 * @param {AdviceStep} step
 * @param {Map<number, string>} roleNames
 */
export function stepWords(app, request, step, roleNames) {
  const actor = personName(step.actor);
  const to = toName(app, request, step.data.to, roleNames);
  switch (step.kind) {
    case "requested":
      return step.holder ? t("Sent to {name}", { name: heldBy(step) }) : t("Sent to {to}: nobody to alert now", { to });
    case "escalated":
      return step.holder ? t("No answer: escalated to {name}", { name: heldBy(step) }) : t("No answer: nobody else to alert");
    case "realerted":
      return t("No answer: {name} alerted again", { name: personName(step.holder) });
    case "passed":
      if (!step.holder) return t("{actor} passed it to {to}: nobody to alert now", { actor, to });
      return step.data.to?.user ? t("{actor} passed it to {name}", { actor, name: heldBy(step) })
        : t("{actor} passed it to {to}: sent to {name}", { actor, to, name: heldBy(step) });
    case "acknowledged":
      return step.data.answer === "call_me" ? t("{actor}: call me", { actor }) : t("{actor}: I'm on it", { actor });
    case "cancelled":
      return t("Withdrawn by {actor}", { actor });
    default:
      return step.kind;
  }
}

/** Whom the request is put to now: a role or a person. @param {AdviceRequest} request */
export function addresseeName(request) {
  return request.to.role ? request.to.role.name : personName(request.to.user);
}

/** A toast with a link to the request (no patient in it: a phone's screen is seen by others). @param {string} message @param {number} id */
function alertWithLink(message, id) {
  toast(message, 10000);
  const el = byId("toast");
  el.append(" ", h("a", { href: `#/r/${id}`, class: "toast-link", onclick: () => (el.hidden = true) }, t("Open")));
}

/** Older than this, a step replayed after a long time offline is history, not news. */
const STALE_ALERT_MS = 15 * 60 * 1000;

/**
 * Alert me of a request now put to me, and of an answer to mine, unless it is on screen.
 * @param {App} app
 * @param {AdviceRequest} request
 */
function alertMe(app, request) {
  const me = app.session.user.id;
  const step = request.last_step;
  if (!step || location.hash === `#/r/${request.id}`) return;
  // A step replayed after a long time offline is history, not news: the home screen's
  // "Requests" shows where things stand (a device's clock may be a little off, hence 15 min).
  if (Date.now() - Date.parse(step.at) > STALE_ALERT_MS) return;
  const department = app.session.departments.get(request.department)?.name ?? "";
  if (request.status === "open" && request.holder?.id === me && step.holder?.id === me && HANDED.includes(step.kind)) {
    alertWithLink(t(ALERTS[request.priority], { department }), request.id);
  } else if (request.requester.id === me && step.kind === "acknowledged") {
    alertWithLink(stepWords(app, request, step, new Map()), request.id);
  }
}

/**
 * Follow `advice.updated` for this session: kept here, then alerts (app.js calls this
 * once a session starts, before any screen listens).
 * @param {App} app
 */
export function watchAdvice(app) {
  app.session.addEventListener("change", (event) => {
    const detail = /** @type {CustomEvent<{what: string, frame?: AdviceUpdated}>} */ (event).detail;
    if (detail.what !== "advice.updated" || !detail.frame) return;
    remember(app, detail.frame.request);
    alertMe(app, detail.frame.request);
  });
}

/**
 * The home screen's "Requests": the open ones made by me or put to me, urgent first;
 * each opens its screen. Hidden while there are none.
 * @param {App} app
 */
export function requestsSection(app) {
  const me = app.session.user.id;
  const list = h("ul", { class: "list", id: "advice-requests", "aria-labelledby": "advice-requests-title" });
  const section = h("section", { class: "stack", hidden: true }, h("h2", { id: "advice-requests-title" }, t("Requests")), list);
  const draw = () => {
    const open = openMine(app);
    section.hidden = !open.length;
    list.replaceChildren(...open.map((r) => {
      const patient = h("strong", {}, t("Patient"));
      app.session.patient(r.patient).then((p) => (patient.textContent = patientLabel(p))).catch(() => {});
      const department = app.session.departments.get(r.department)?.name ?? "";
      const line = r.requester.id === me
        ? t("You asked {to} · with {holder} · {time}", { to: addresseeName(r), holder: personName(r.holder), time: shortTime(r.created_at) })
        : t("From {name} · {department} · {time}", { name: personName(r.requester), department, time: shortTime(r.created_at) });
      return h("li", {}, h("a", { href: `#/r/${r.id}`, dataset: { advice: r.id, priority: r.priority } },
        priorityBadge(r.priority),
        h("span", { class: "grow" }, patient, h("div", { class: "sub" }, line)),
        r.holder?.id === me ? h("span", { class: "tag" }, t("For you")) : null));
    }));
  };
  const onChange = (/** @type {Event} */ event) => {
    if (/** @type {CustomEvent<{what: string}>} */ (event).detail.what === "advice.updated") draw();
  };
  app.session.addEventListener("change", onChange);
  loadMine(app).then(draw).catch(() => {});
  draw();
  return { el: section, unmount: () => app.session.removeEventListener("change", onChange) };
}

/** A message that is a request: a badge linking to it. @param {App} app @param {number | undefined} messageId */
export function adviceBadge(app, messageId) {
  const request = requestOfMessage(app, messageId);
  if (!request) return null;
  const words = request.status === "open" ? t("Request: {priority}", { priority: priorityLabel(request.priority) })
    : request.status === "acknowledged" ? t("Request answered") : t("Request withdrawn");
  return h("a", { href: `#/r/${request.id}`, class: `advice-badge ${request.status === "open" ? request.priority : "closed"}`, dataset: { advice: request.id } }, words);
}
