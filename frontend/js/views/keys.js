// Encryption keys on this browser: created on the first sign-in (backup
// sealed under a generated recovery code, shown once, or a passphrase the
// user chooses), recovered from that secret on a new browser.
import * as c from "../crypto.js";
import { h, explain } from "../ui.js";

function field(id, label, attrs = {}) {
  const input = h("input", { id, name: id, autocomplete: "off", spellcheck: "false", autocapitalize: "none", ...attrs });
  return [input, h("div", {}, h("label", { for: id }, label), input)];
}

function showSecret(app, secret, el) {
  const done = h("button", { class: "primary", type: "button", disabled: true, onclick: () => app.connect() }, "Continue");
  const check = h("input", { id: "written", type: "checkbox", onchange: () => (done.disabled = !check.checked) });
  el.replaceChildren(h("div", { class: "card stack" },
    h("h2", {}, "Your recovery code"),
    h("p", {}, "Write it down and keep it safe, like a badge PIN. You need it to read your messages on a new phone or computer. It is shown only once; Rounds cannot show it again."),
    h("p", { class: "secret", id: "recovery-secret" }, secret),
    h("div", { class: "row" }, h("label", { for: "written", class: "row" }, check, "I have written down my recovery code")),
    done));
  check.focus();
}

function createForm(app, el) {
  const status = h("p", { role: "status", class: "muted" });
  const error = h("p", { class: "error", role: "alert" });
  const [phrase, phraseField] = field("passphrase", "Passphrase (16 characters or more)", { type: "password" });
  const [again, againField] = field("passphrase2", "The same passphrase again", { type: "password" });
  const own = h("div", { class: "stack", hidden: true }, phraseField, againField);
  const generated = h("input", { type: "radio", name: "kind", id: "kind-generated", checked: true, onchange: () => (own.hidden = true) });
  const chosen = h("input", { type: "radio", name: "kind", id: "kind-chosen", onchange: () => { own.hidden = false; phrase.focus(); } });
  const submit = h("button", { class: "primary", type: "submit" }, "Create my keys");
  const form = h("form", {
    class: "card",
    onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      const passphrase = chosen.checked ? phrase.value : null;
      if (passphrase !== null) {
        try {
          c.checkPassphraseStrength(passphrase);
        } catch (e) {
          error.textContent = explain(e);
          return;
        }
        if (passphrase !== again.value) {
          error.textContent = "The two passphrases differ.";
          return;
        }
      }
      submit.disabled = true;
      status.textContent = "Creating and securing your keys… this takes a few seconds.";
      try {
        const secret = await app.e2e.create({ passphrase });
        if (secret) showSecret(app, secret, el);
        else app.connect();
      } catch (e) {
        if (e.code === "recovery_needed") {
          app.keyState = "recover";
          app.route();
          return;
        }
        error.textContent = explain(e);
        status.textContent = "";
        submit.disabled = false;
      }
    },
  },
  h("h2", {}, "Set up encryption on this device"),
  h("p", {}, "Rounds encrypts every message on your device. A copy of your keys is kept on the server, locked with a recovery code only you hold."),
  h("fieldset", { class: "stack" }, h("legend", {}, "Protect the copy with"),
    h("label", { for: "kind-generated", class: "row" }, generated, "A recovery code made for me (recommended)"),
    h("label", { for: "kind-chosen", class: "row" }, chosen, "A passphrase I choose")),
  own, error, status, submit);
  return [form, submit];
}

function recoverForm(app) {
  const status = h("p", { role: "status", class: "muted" });
  const error = h("p", { class: "error", role: "alert" });
  const [secret, secretField] = field("recovery", "Recovery code or passphrase", { type: "password", required: true });
  const submit = h("button", { class: "primary", type: "submit" }, "Restore my keys");
  const form = h("form", {
    class: "card",
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      error.textContent = "";
      status.textContent = "Opening your keys… this takes a few seconds.";
      try {
        await app.e2e.recover(secret.value);
        app.connect();
      } catch (e) {
        error.textContent = explain(e);
        status.textContent = "";
        submit.disabled = false;
        secret.select();
      }
    },
  },
  h("h2", {}, "Restore your keys on this device"),
  h("p", {}, "Your keys were created on another device. Enter the recovery code (or passphrase) you wrote down then."),
  secretField, error, status, submit);
  return [form, secret];
}

export function render(app) {
  const el = h("div", { class: "stack" });
  let focus;
  if (app.keyState === "recover") {
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
  return { el, title: "Encryption keys", focus };
}
