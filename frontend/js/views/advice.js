// @ts-check
// An advice request (#/r/{id}; docs/browser.md, "Advice requests in the browser"):
// the patient and the conversation, the question decrypted here from the thread,
// who asked whom, who has it now, and its timeline in words, live from the socket's
// advice.updated events. Whoever has it, anyone it was put to and a head answer
// ("I'm on it", "Call me") or pass it on; its requester may withdraw it. The server
// decides who may: a refusal is shown in its words.
//
// A consult's request (another department asked: no message yet) says so while
// pending: its requester that the question is sent when the department opens the
// consult (it is held in their browser: consults.js), whoever it was put to (or a
// head) "Open the consult", which signs the guest in and shows the thread.
import { get } from "../api.js";
import { heldQuestion, openConsult, postWhenOpen } from "../consults.js";
import { act, addresseeName, known, personName, priorityBadge, refusal, remember, stepWords } from "../advice.js";
import { t } from "../i18n.js";
import { h, explain, patientLabel, shortTime } from "../ui.js";
import { ImageUrls } from "../photos/photos.js";
import { addresseeChoices } from "./asksheet.js";

/** @import { AdviceDetail, AdviceRequest, AdviceUpdated, OnCallRoles } from "../types/api.js" */
/** @import { App, Entry } from "../app.js" */
/** @import { Consult } from "../e2e/consults.js" */

const STATUS = {
  open: () => t("Waiting for an answer"),
  acknowledged: () => t("Answered"),
  cancelled: () => t("Withdrawn"),
};
const HISTORY_PAGES = 5;

/**
 * The question: the thread's message, from what this browser has decrypted, else
 * from the thread's history (the latest pages), decrypted as the conversation does.
 * @param {App} app
 * @param {AdviceRequest} request
 * @returns {Promise<Entry | null>}
 */
async function findQuestion(app, request) {
  const inState = () => [...app.session.threadMessages(request.thread).values()].find((e) => e.id === request.message) ?? null;
  let found = inState();
  if (found) return found;
  await app.live.ready();
  if (!app.session.threads.has(request.thread)) await app.session.loadDepartment(request.department, { force: true });
  await app.session.departmentMembers(request.department).catch(() => []);
  let page = await app.loadHistory(request.thread);
  for (let pages = 1; !(found = inState()) && page.has_more && pages < HISTORY_PAGES; pages += 1) {
    page = await app.loadHistory(request.thread, Math.min(...page.messages.map((m) => m.seq)));
  }
  return found;
}

/**
 * @param {App} app
 * @param {number} requestId
 */
export function render(app, requestId) {
  const state = app.session;
  const me = state.user.id;
  const summary = h("div", { class: "card stack", id: "advice-summary" }, h("p", { class: "loading" }, t("Loading…")));
  const question = h("div", { class: "card stack", id: "advice-question" });
  const buttons = h("div", { class: "row", id: "advice-actions" });
  const error = h("p", { class: "error", role: "alert", id: "advice-error" });
  const timeline = h("ol", { class: "timeline", id: "advice-timeline", "aria-label": t("Timeline") });
  const passDialog = h("dialog", { id: "pass-dialog", "aria-label": t("Pass it on") });
  /** @type {AdviceDetail | null} */
  let detail = null;
  /** @type {Map<number, string>} */
  const roleNames = new Map();
  let busy = false;
  // The question's photos, decrypted here as the conversation does (revoked on leaving).
  const urls = new ImageUrls();

  /** The question's photos as thumbnails, each opening the conversation. @param {any[]} photos @param {number} thread */
  const questionPhotos = (photos, thread) => h("div", { class: "photos", id: "advice-photos" }, photos.map((photo, i) => {
    const img = h("img", { alt: t("Photo {number} of {count} of the question", { number: i + 1, count: photos.length }),
      width: photo.thumbnail.width, height: photo.thumbnail.height });
    const tile = h("a", { class: "photo", href: `#/t/${thread}` }, img);
    urls.url(photo).then((url) => {
      img.src = url;
      tile.classList.add("ready");
    }).catch((error) => tile.replaceChildren(h("span", { class: "error" }, t("Photo refused: {reason}", { reason: explain(error) }))));
    return tile;
  }));
  /** @type {Consult | null} the consult, for a consult's request */
  let consult = null;
  const consultArea = h("div", { class: "stack", id: "advice-consult" });

  /** A consult's state: pending (and who opens it), or open with its conversation. */
  const drawConsult = () => {
    const d = /** @type {AdviceDetail} */ (detail);
    if (!consult) return void consultArea.replaceChildren();
    const asked = d.timeline.some((step) => step.holder?.id === me) || d.holder?.id === me;
    const requester = d.requester.id === me;
    if (consult.state === "pending") {
      const held = requester && heldQuestion(app, consult.thread);
      consultArea.replaceChildren(requester
        ? h("p", { class: "notice", id: "consult-pending" }, held
          ? t("Your question is sent when the department opens the consult: it stays on this device until then.")
          : t("Your question was not kept on this device (the app was reloaded): once the consult is open, write it in its conversation."))
        : h("p", { class: "notice", id: "consult-pending" }, t("A consult from another department: opening it lets the colleague who asked read and write this patient's consult conversation, and nothing else of the department.")),
      !requester && (asked || state.isHead(d.department))
        ? h("button", { type: "button", class: "primary", id: "consult-open", onclick: opening }, t("Open the consult")) : "");
    } else {
      consultArea.replaceChildren(h("p", { class: "notice", id: "consult-state" },
        consult.state === "open" ? t("The consult is open.") : t("The consult has ended.")),
      h("a", { class: "button", href: `#/t/${consult.thread}`, id: "consult-thread" }, t("Open the consult's conversation")));
    }
  };

  const opening = async () => {
    if (busy) return;
    busy = true;
    error.textContent = "";
    try {
      consult = await openConsult(app, /** @type {AdviceDetail} */ (detail).thread);
      app.go(`#/t/${consult.thread}`);
    } catch (e) {
      error.textContent = explain(e);
      error.dataset.code = /** @type {{code?: string}} */ (e).code ?? "";
    } finally {
      busy = false;
    }
  };

  /** A consult now open: my held question is posted in it, then its conversation shown. */
  const consultChanged = async () => {
    drawConsult();
    if (!consult || consult.state !== "open" || !heldQuestion(app, consult.thread)) return;
    try {
      if (await postWhenOpen(app, consult)) app.go(`#/t/${consult.thread}`);
    } catch (e) {
      error.textContent = t("Your question was not posted in the consult: {reason}", { reason: explain(e) });
    }
  };

  /** @param {AdviceRequest} request @param {HTMLElement} el */
  const patientLink = (request, el) => {
    const thread = state.threads.get(request.thread);
    state.patient(request.patient).then((p) => {
      el.textContent = thread ? t("{patient} · {subject}", { patient: patientLabel(p), subject: thread.title }) : patientLabel(p);
      app.retitle(view, patientLabel(p));
    }).catch(() => {});
  };

  const now = () => {
    const d = /** @type {AdviceDetail} */ (detail);
    if (d.status === "acknowledged") {
      return d.answer === "call_me" ? t("{name} asks you to call · {time}", { name: personName(d.answered_by), time: shortTime(/** @type {string} */ (d.answered_at)) })
        : t("{name} is on it · {time}", { name: personName(d.answered_by), time: shortTime(/** @type {string} */ (d.answered_at)) });
    }
    if (d.status === "cancelled") return t("Withdrawn");
    if (!d.holder) return t("Nobody has it now");
    return d.due_at ? t("With {name} now · no answer by {time}: it moves on", { name: personName(d.holder), time: shortTime(d.due_at) })
      : t("With {name} now", { name: personName(d.holder) });
  };

  /** @param {"acknowledge" | "pass" | "cancel"} verb @param {object} [body] */
  const doing = async (verb, body) => {
    if (busy) return;
    busy = true;
    error.textContent = "";
    delete error.dataset.code;
    try {
      apply(await act(app, requestId, verb, body));
    } catch (e) {
      error.textContent = refusal(e);
      error.dataset.code = /** @type {{code?: string}} */ (e).code ?? "";
    } finally {
      busy = false;
    }
  };

  const openPass = () => {
    const d = /** @type {AdviceDetail} */ (detail);
    const choices = addresseeChoices(app, d.department, { name: "pass-to", exclude: [d.requester.id] });
    const problem = h("p", { class: "error", role: "alert" });
    passDialog.replaceChildren(h("form", {
      class: "stack", method: "dialog",
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const to = choices.value();
        if (!to) {
          problem.textContent = t("Choose whom to pass it to.");
          return;
        }
        passDialog.close();
        doing("pass", to);
      },
    }, h("h2", {}, t("Not for me: pass it to…")), choices.el, problem,
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => passDialog.close() }, t("Cancel")),
      h("button", { type: "submit", class: "primary", id: "confirm-pass" }, t("Pass it on")))));
    passDialog.showModal();
  };

  const draw = () => {
    const d = /** @type {AdviceDetail} */ (detail);
    const patient = consult ? h("span", { id: "advice-thread" }) : h("a", { href: `#/t/${d.thread}`, id: "advice-thread" }, t("Open the conversation"));
    patientLink(d, patient);
    summary.replaceChildren(
      h("div", { class: "row status-line" }, priorityBadge(d.priority), h("span", { class: `tag status ${d.status}`, id: "advice-status" }, STATUS[d.status]())),
      h("p", {}, patient),
      h("p", { class: "muted" }, t("Asked by {name} · {time}", { name: d.requester.id === me ? t("you") : personName(d.requester), time: shortTime(d.created_at) })),
      h("p", {}, t("To: {to}", { to: addresseeName(d) })),
      h("p", { id: "advice-holder" }, h("strong", {}, now())));
    timeline.replaceChildren(...d.timeline.map((step) => h("li", { dataset: { kind: step.kind, number: step.number } },
      h("time", { datetime: step.at }, shortTime(step.at)), " ", stepWords(app, d, step, roleNames))));
    const asked = d.timeline.some((step) => step.holder?.id === me) || d.holder?.id === me;
    const mayAnswer = d.status === "open" && d.requester.id !== me && (asked || state.isHead(d.department));
    buttons.replaceChildren(...[...(mayAnswer ? [
      h("button", { type: "button", class: "primary", id: "advice-on-it", onclick: () => doing("acknowledge", { answer: "on_it" }) }, t("I'm on it")),
      h("button", { type: "button", id: "advice-call-me", onclick: () => doing("acknowledge", { answer: "call_me" }) }, t("Call me")),
      h("button", { type: "button", id: "advice-pass", onclick: openPass }, t("Not for me: pass it on")),
    ] : []), d.status === "open" && d.requester.id === me
      ? h("button", { type: "button", class: "danger", id: "advice-withdraw", onclick: () => doing("cancel") }, t("Withdraw")) : null].filter((b) => b !== null));
    drawConsult();
  };

  const drawQuestion = async () => {
    const d = /** @type {AdviceDetail} */ (detail);
    if (consult) {
      const mine = heldQuestion(app, consult.thread);
      question.replaceChildren(h("h2", {}, t("Question")), mine ? h("p", { class: "question-text" }, mine.text)
        : h("p", { class: "muted" }, consult.state === "pending"
          ? t("The question comes in the consult's conversation once the consult is open.")
          : t("The question is in the consult's conversation.")),
      mine?.photos.length ? h("p", { class: "muted" }, t("With photos, sent with it.")) : "");
      return;
    }
    question.replaceChildren(h("h2", {}, t("Question")), h("p", { class: "loading" }, t("Decrypting…")));
    try {
      const entry = await findQuestion(app, d);
      const photos = entry?.body?.photos.length ?? 0;
      question.replaceChildren(h("h2", {}, t("Question")),
        !entry ? h("p", { class: "muted" }, t("Not among the conversation's latest messages: open the conversation to read it."))
          : entry.redacted ? h("p", { class: "muted" }, t("This message was removed."))
            : entry.text === null ? h("p", { class: "error" }, t("Cannot be read on this device: {reason}", { reason: explain(entry.error) }))
              : h("p", { class: "question-text" }, entry.text),
        photos && entry?.body ? questionPhotos(entry.body.photos, d.thread) : "");
    } catch (e) {
      question.replaceChildren(h("h2", {}, t("Question")), h("p", { class: "error" }, explain(e)));
    }
  };

  /** An answer, or an event: the next step is added; a gap (events missed) reloads. @param {AdviceRequest} request */
  const apply = (request) => {
    if (!detail || request.id !== requestId || request.steps < detail.steps) return;
    const steps = detail.timeline;
    const last = request.last_step;
    if (last && last.number === steps.length + 1) steps.push(last);
    else if (request.steps > steps.length) return void load();
    detail = { ...request, timeline: steps };
    draw();
  };

  const load = async () => {
    try {
      /** @type {AdviceDetail} */
      const found = await get(`/api/advice/${requestId}`);
      remember(app, found);
      detail = found;
      get(`/api/departments/${found.department}/oncall/roles`).then((/** @type {OnCallRoles} */ r) => {
        for (const role of r.roles) roleNames.set(role.id, role.name);
        draw();
      }).catch(() => {});
      await state.departmentMembers(found.department).catch(() => []);
      consult = found.message === null ? await app.endToEnd.consults.of(found.thread, { fresh: true }).catch(() => null) : null;
      draw();
      drawQuestion();
      consultChanged();
    } catch (e) {
      summary.replaceChildren(h("p", { class: "error", role: "alert" }, known(app, requestId) ? refusal(e) : explain(e)));
    }
  };

  const onChange = (/** @type {Event} */ event) => {
    const detailOf = /** @type {CustomEvent<{what: string, frame?: AdviceUpdated}>} */ (event).detail;
    if (detailOf.what === "advice.updated" && detailOf.frame) apply(detailOf.frame.request);
    const changed = /** @type {{consult?: Consult} | undefined} */ (detailOf.frame)?.consult;
    if (detailOf.what === "consult.updated" && changed && detail && changed.thread === detail.thread) {
      consult = changed;
      consultChanged();
    }
  };
  state.addEventListener("change", onChange);
  load();

  const view = h("div", { class: "stack advice" }, summary, consultArea, question, buttons, error,
    h("h2", {}, t("Timeline")), timeline, passDialog);
  return {
    el: view, title: t("Request for advice"), back: true,
    unmount: () => {
      state.removeEventListener("change", onChange);
      urls.revoke();
    },
  };
}
