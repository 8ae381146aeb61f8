// @ts-check
// Encryption keys on this browser: created on the first sign-in (backup
// sealed under a generated recovery code, shown once — the default — or a
// passphrase the user chooses, which must pass passphrase.js: the floor, then
// zxcvbn's estimate with the user's own name and login as known words),
// recovered from that secret on a new browser. zxcvbn's dictionaries load
// only once "A passphrase I choose" is picked.
import { N_, t } from "../i18n.js";
import { checkPassphrase, checkRules, loadEstimator } from "../passphrase.js";
import { h, showError } from "../ui.js";
import { offerPasskey, pinField } from "./signout.js";

/** @import { Refusal } from "../types/api.js" */

/**
 * @param {string} id
 * @param {string} label
 * @param {Record<string, any>} [attrs]
 * @returns {[HTMLInputElement, HTMLDivElement]} the input, and it with its label
 */
function field(id, label, attrs = {}) {
  const input = h("input", { id, name: id, autocomplete: "off", spellcheck: "false", autocapitalize: "none", ...attrs });
  return [input, h("div", {}, h("label", { for: id }, label), input)];
}

/**
 * The "this takes a few seconds" state while Argon2id runs in its worker: an
 * indeterminate progress bar, the seconds elapsed (they tick: the page is not
 * frozen) and Cancel, which aborts (terminates the worker).
 * @param {string} message
 */
function derivation(message) {
  const text = h("span", {}, message);
  const elapsed = h("span", { class: "muted", id: "derivation-elapsed" });
  const cancel = h("button", { type: "button", id: "cancel-derivation" }, t("Cancel"));
  const el = h("div", { class: "stack", id: "derivation", hidden: true },
    h("p", { role: "status" }, text, " ", elapsed),
    h("progress", { "aria-label": message }),
    cancel);
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let timer;
  /** @type {AbortController | null} */
  let controller = null;
  cancel.addEventListener("click", () => controller?.abort());
  return {
    el,
    /** Shows the state and returns the AbortSignal for the work. */
    start() {
      controller = new AbortController();
      const started = Date.now();
      elapsed.textContent = "";
      timer = setInterval(() => (elapsed.textContent = t("{seconds} s", { seconds: Math.floor((Date.now() - started) / 1000) })), 1000);
      el.hidden = false;
      cancel.focus();
      return controller.signal;
    },
    stop() {
      clearInterval(timer);
      el.hidden = true;
      controller = null;
    },
  };
}

/** @param {import("../app.js").App} app @param {string} secret @param {HTMLElement} el */
function showSecret(app, secret, el) {
  const done = h("button", { class: "primary", type: "button", disabled: true, onclick: () => app.connect() }, t("Continue"));
  const check = h("input", { id: "written", type: "checkbox", onchange: () => (done.disabled = !check.checked) });
  el.replaceChildren(h("div", { class: "card stack" },
    h("h2", {}, t("Your recovery code")),
    h("p", {}, t("Write it down and keep it safe, like a badge PIN. You need it to read your messages on a new phone or computer. It is shown only once; Rounds cannot show it again.")),
    h("p", { class: "secret", id: "recovery-secret" }, secret),
    h("div", { class: "row" }, h("label", { for: "written", class: "row" }, check, t("I have written down my recovery code"))),
    done));
  check.focus();
}

/**
 * @param {import("../app.js").App} app
 * @param {HTMLElement} el
 * @returns {[HTMLFormElement, HTMLButtonElement]}
 */
function createForm(app, el) {
  const status = h("p", { role: "status", class: "muted" });
  const error = h("p", { class: "error", role: "alert" });
  const [phrase, phraseField] = field("passphrase", t("Passphrase (16 characters or more)"), { type: "password" });
  const [again, againField] = field("passphrase2", t("The same passphrase again"), { type: "password" });
  const own = h("div", { class: "stack", hidden: true }, phraseField, againField);
  const generated = h("input", { type: "radio", name: "kind", id: "kind-generated", checked: true, onchange: () => (own.hidden = true) });
  const chosen = h("input", {
    type: "radio", name: "kind", id: "kind-chosen",
    onchange: () => {
      own.hidden = false;
      phrase.focus();
      loadEstimator().catch(() => {}); // the dictionaries, while the passphrase is typed
    },
  });
  const submit = h("button", { class: "primary", type: "submit" }, t("Create my keys"));
  const busy = derivation(t("Creating and securing your keys… this takes a few seconds."));
  const form = h("form", {
    class: "card",
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      showError(error, null);
      const passphrase = chosen.checked ? phrase.value : null;
      if (passphrase !== null) {
        submit.disabled = true;
        try {
          checkRules(passphrase); // at once, before the estimate's dictionaries load
          if (passphrase !== again.value) {
            error.textContent = t("The two passphrases differ.");
            return;
          }
          status.textContent = t("Checking how easy the passphrase is to guess…");
          await checkPassphrase(passphrase, app.endToEnd.identity.userWords());
        } catch (e) {
          showError(error, e);
          return;
        } finally {
          status.textContent = "";
          submit.disabled = false;
        }
      }
      submit.disabled = true;
      status.textContent = "";
      const signal = busy.start();
      try {
        const secret = await app.endToEnd.create({ passphrase, signal });
        busy.stop();
        if (secret) showSecret(app, secret, el);
        else app.connect();
      } catch (e) {
        busy.stop();
        if (/** @type {Refusal} */ (e).code === "recovery_needed") {
          app.keyState = "recover";
          app.route();
          return;
        }
        if (/** @type {Refusal} */ (e).code === "cancelled") status.textContent = t("Cancelled: your keys are not secured yet. Choose again when you are ready.");
        else showError(error, e);
        submit.disabled = false;
        submit.focus();
      }
    },
  },
  h("h2", {}, t("Set up encryption on this device")),
  h("p", {}, t("Rounds encrypts every message on your device. A copy of your keys is kept on the server, locked with a recovery code only you hold.")),
  h("fieldset", { class: "stack" }, h("legend", {}, t("Protect the copy with")),
    h("label", { for: "kind-generated", class: "row" }, generated, t("A recovery code made for me (recommended)")),
    h("label", { for: "kind-chosen", class: "row" }, chosen, t("A passphrase I choose"))),
  own, error, status, busy.el, submit);
  return [form, submit];
}

/** @param {import("../app.js").App} app @returns {[HTMLFormElement, HTMLInputElement]} */
function recoverForm(app) {
  const status = h("p", { role: "status", class: "muted" });
  const error = h("p", { class: "error", role: "alert" });
  const [secret, secretField] = field("recovery", t("Recovery code or passphrase"), { type: "password", required: true });
  const submit = h("button", { class: "primary", type: "submit" }, t("Restore my keys"));
  const busy = derivation(t("Opening your keys… this takes a few seconds."));
  const form = h("form", {
    class: "card",
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      submit.disabled = true;
      error.textContent = "";
      status.textContent = "";
      const signal = busy.start();
      try {
        await app.endToEnd.recover(secret.value, { signal });
        busy.stop();
        app.connect();
      } catch (e) {
        busy.stop();
        if (/** @type {Refusal} */ (e).code === "cancelled") status.textContent = t("Cancelled.");
        else showError(error, e);
        submit.disabled = false;
        secret.select();
      }
    },
  },
  h("h2", {}, t("Restore your keys on this device")),
  h("p", { id: "recover-why" }, t(WHY[app.endToEnd.identity.recoverWhy])),
  secretField, error, status, busy.el, submit);
  return [form, secret];
}

/** Why the recovery code is asked for: only "replaced" knows the keys come from elsewhere. */
const WHY = {
  absent: N_("This computer does not hold your keys. Enter the recovery code (or passphrase) you wrote down when you set them up."),
  replaced: N_("Your keys were replaced on another device. Enter the recovery code (or passphrase) you wrote down then."),
  pin_wiped: N_("Too many wrong PINs: the copy of your keys on this computer was erased. Enter the recovery code (or passphrase) you wrote down when you set them up."),
};

/**
 * Signing in again on a computer that kept the keys under a PIN (devicecopy.js): the
 * PIN opens them; the fifth wrong one erases the copy and the recovery code is asked.
 * @param {import("../app.js").App} app
 * @returns {[HTMLFormElement, HTMLInputElement]}
 */
function unlockForm(app) {
  const error = h("p", { class: "error", role: "alert" });
  const status = h("p", { role: "status", class: "muted" });
  const pin = pinField("pin", t("PIN"));
  const submit = h("button", { class: "primary", type: "submit" }, t("Unlock"));
  const busy = derivation(t("Opening your keys…"));
  const toRecovery = (/** @type {"absent" | "pin_wiped"} */ why) => {
    app.endToEnd.identity.recoverWhy = why;
    app.keyState = "recover";
    app.route();
  };
  const form = h("form", {
    class: "card",
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      submit.disabled = true;
      showError(error, null);
      status.textContent = "";
      const signal = busy.start();
      try {
        await app.endToEnd.unlock(pin.input.value, { signal });
        busy.stop();
        app.connect();
      } catch (e) {
        busy.stop();
        const code = /** @type {Refusal} */ (e).code;
        if (code === "pin_wiped" || code === "no_copy") return toRecovery(code === "no_copy" ? "absent" : "pin_wiped");
        if (code === "cancelled") status.textContent = t("Cancelled: that counted as a try.");
        else showError(error, e);
        submit.disabled = false;
        pin.input.value = "";
        pin.input.focus();
      } finally {
        pin.input.value = "";
      }
    },
  },
  h("h2", {}, t("Unlock your keys")),
  h("p", {}, t("This computer keeps your keys, locked with the PIN you chose when you signed out here.")),
  pin.el, error, status, busy.el, submit,
  h("button", { type: "button", class: "link", id: "use-recovery", onclick: () => toRecovery("absent") }, t("Use my recovery code instead")));
  offerPasskey(app, form, toRecovery);
  return [form, pin.input];
}

/**
 * @param {import("../app.js").App} app
 */
export function render(app) {
  const el = h("div", { class: "stack" });
  let focus;
  if (app.keyState === "unlock") {
    const [form, input] = unlockForm(app);
    el.append(form);
    focus = input;
  } else if (app.keyState === "recover") {
    const [form, input] = recoverForm(app);
    el.append(form);
    focus = input;
  } else if (app.keyState === "backup") {
    // Published earlier but the backup was never stored: store one now.
    const [form, submit] = createForm(app, el);
    el.append(form);
    focus = submit;
  } else {
    const [form, submit] = createForm(app, el);
    el.append(form);
    focus = submit;
  }
  return { el, title: t("Encryption keys"), focus };
}
