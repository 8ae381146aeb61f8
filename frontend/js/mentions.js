// @ts-check
// The composer's `@` and "!" (docs/browser.md, "Advice requests in the browser"):
// typing `@` offers the department's on-call roles and members; picking one writes
// `@Name` into the text, which stays end to end encrypted (the server never sees a
// mention). "!" appears once the text mentions someone and sets a priority, urgent
// then emergency: Send then posts the message and makes it a request to the first
// one mentioned. A mention without a priority is just text.
import { PRIORITIES, addressees, ask, addresseeName, priorityLabel, refusal } from "./advice.js";
import { t } from "./i18n.js";
import { h, toast } from "./ui.js";

/** @import { App } from "./app.js" */
/** @import { Posted, Priority } from "./types/api.js" */

/** @typedef {{kind: "role" | "user", id: number, name: string, sub: string}} Mention */

const SUGGESTIONS = 6;
/** "!" goes from none to urgent to emergency (routine is the ask sheet's). @type {(Priority | null)[]} */
const CYCLE = [null, ...PRIORITIES.slice(1).map(([value]) => value)];

/** Lower case, accents off, to match what is typed. @param {string} text */
function fold(text) {
  return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
}

/**
 * The composer's tools row: "Ask for advice", "!", and the `@` suggestions.
 * @param {App} app
 * @param {number} threadId
 * @param {HTMLTextAreaElement} text the composer's field
 * @param {() => void} onAsk opens the ask sheet
 */
export function composerTools(app, threadId, text, onAsk) {
  /** @type {Promise<Mention[]> | null} one fetch, however fast one types */
  let options = null;
  /** @type {Mention[]} */
  let chosen = [];
  /** @type {Mention[]} */
  let shown = [];
  let active = 0;
  /** @type {Priority | null} */
  let priority = null;

  const list = h("ul", { class: "mentions", id: "mention-list", "aria-label": t("Mention a role or a colleague"), hidden: true });
  const askButton = h("button", { type: "button", id: "ask-advice", class: "tool", onclick: onAsk }, t("Ask for advice"));
  const flag = h("button", { type: "button", id: "mention-priority", class: "tool flag", hidden: true, "aria-pressed": "false",
    onclick: () => {
      priority = CYCLE[(CYCLE.indexOf(priority) + 1) % CYCLE.length];
      drawFlag();
    } });
  const el = h("div", { class: "composer-tools" }, list, h("div", { class: "row" }, askButton, flag));

  const drawFlag = () => {
    flag.hidden = !mentioned(text.value).length;
    flag.setAttribute("aria-pressed", String(Boolean(priority)));
    flag.dataset.priority = priority ?? "";
    flag.textContent = priority ? t("! {priority} request", { priority: priorityLabel(priority) }) : t("! Make it a request");
  };

  /** The mentions still in `body`, in the order they appear. @param {string} body */
  const mentioned = (body) => chosen.filter((m) => body.includes(`@${m.name}`))
    .sort((a, b) => body.indexOf(`@${a.name}`) - body.indexOf(`@${b.name}`));

  const fetchOptions = async () => {
    const department = /** @type {number} */ (app.session.threads.get(threadId)?.department);
    const { roles, members } = await addressees(app, department);
    return [
      ...roles.map((r) => /** @type {Mention} */ ({ kind: "role", id: r.id, name: r.name,
        sub: r.on_duty.length ? t("on duty: {names}", { names: r.on_duty.map((u) => u.display_name || u.username).join(", ") }) : t("nobody on duty now") })),
      ...members.map((m) => /** @type {Mention} */ ({ kind: "user", id: m.user.id, name: m.user.display_name || m.user.username, sub: "" })),
    ];
  };
  const load = () => (options ??= fetchOptions().catch((error) => {
    options = null; // tried again at the next `@`
    throw error;
  }));

  /** The `@word` just before the caret, if any. */
  const typed = () => {
    const before = text.value.slice(0, text.selectionStart ?? text.value.length);
    return /(?:^|\s)@([^@\n]{0,40})$/.exec(before);
  };

  const close = () => {
    list.hidden = true;
    shown = [];
  };

  const suggest = async () => {
    if (!typed()) return close();
    const all = await load().catch(() => []);
    const match = typed(); // what is typed by now
    if (!match) return close();
    const query = fold(match[1]);
    shown = all.filter((m) => fold(m.name).includes(query)).slice(0, SUGGESTIONS);
    if (!shown.length) return close();
    active = Math.min(active, shown.length - 1);
    list.replaceChildren(...shown.map((m, i) => h("li", {}, h("button", {
      type: "button", class: `item${i === active ? " active" : ""}`, dataset: { mention: `${m.kind}:${m.id}` },
      onclick: () => pick(m),
    }, h("strong", {}, `@${m.name}`), m.sub ? h("span", { class: "sub" }, " ", m.sub) : null))));
    list.hidden = false;
  };

  /** @param {Mention} mention */
  const pick = (mention) => {
    const match = typed();
    const caret = text.selectionStart ?? text.value.length;
    const start = match ? caret - match[1].length - 1 : caret;
    const insert = `@${mention.name} `;
    text.value = text.value.slice(0, start) + insert + text.value.slice(caret);
    text.selectionStart = text.selectionEnd = start + insert.length;
    if (!chosen.some((m) => m.kind === mention.kind && m.id === mention.id)) chosen.push(mention);
    close();
    drawFlag();
    text.focus();
  };

  text.addEventListener("input", () => {
    active = 0;
    suggest();
    drawFlag();
  });
  // Before the composer's own Enter-to-send: while suggestions show, Enter or Tab picks one.
  text.addEventListener("keydown", (event) => {
    if (list.hidden || !shown.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      active = (active + (event.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
      suggest();
    } else if (event.key === "Enter" || event.key === "Tab") pick(shown[active]);
    else if (event.key === "Escape") close();
    else return;
    event.preventDefault();
    event.stopImmediatePropagation();
  });

  return {
    el,
    /** Closed conversation: no asking. @param {boolean} disabled */
    disable(disabled) {
      askButton.disabled = flag.disabled = disabled;
    },
    /**
     * The message was posted: with a mention and a priority, make it a request to the
     * first one mentioned (a failure is said; the message stays as sent).
     * @param {Posted} posted
     * @param {string} body the text that was sent
     */
    async sent(posted, body) {
      const first = mentioned(body)[0];
      const level = priority;
      chosen = [];
      priority = null;
      drawFlag();
      if (!first || !level) return;
      try {
        const request = await ask(app, posted.message_id, level, first.kind === "role" ? { to_role: first.id } : { to_user: first.id });
        toast(t("Request sent to {to}.", { to: addresseeName(request) }));
      } catch (e) {
        toast(t("The message was sent, but it is not a request: {reason}", { reason: refusal(e) }));
      }
    },
  };
}
