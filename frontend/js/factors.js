// @ts-check
// My second factors (docs/browser.md, "Signing in with a second factor"): the profile's
// "Sign-in security" card, and what the sign-in's second step shares with it — the
// refusals worded for people, setting up an authenticator app, and backup codes shown
// once. Taking a factor away or making new backup codes asks for the password again,
// so a browser left signed in is not enough to take a doctor's second factor away.
import { get, post } from "./api.js";
import { locale, t, tn } from "./i18n.js";
import { h, explain, fullTime } from "./ui.js";
import { createCredential } from "./webauthn.js";

/**
 * @typedef {{id: number, name: string, created_at: string, last_used_at: string | null, backed_up: boolean}} PasskeyCard
 * @typedef {{required: boolean, totp: boolean, passkeys: PasskeyCard[], backup_codes_left: number}} SecondFactors
 * @typedef {{secret: string, otpauth_uri: string, qr_svg: string}} TotpSetup
 */

/**
 * The lock-out sentence, as the sign-in words it: for how long, and until when.
 * @param {{data?: Record<string, any>, retryAfter?: number | null}} error
 */
export function lockedOut(error) {
  const seconds = error.data?.retry_after_seconds ?? error.retryAfter ?? 900;
  const minutes = Math.ceil(seconds / 60);
  const until = new Date(Date.now() + seconds * 1000).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
  return tn(minutes,
    "Too many failed sign-ins: this account is locked on this device for {count} minute (until {until}). Ask a colleague or the switchboard if it is urgent.",
    "Too many failed sign-ins: this account is locked on this device for {count} minutes (until {until}). Ask a colleague or the switchboard if it is urgent.",
    { until });
}

/**
 * A sentence for a refused second factor, its set-up or its removal.
 * @param {unknown} error an ApiError, or a ceremony's error (webauthn.js)
 * @param {string} [conflict] what a `conflict` means where it happened
 */
export function factorRefusal(error, conflict) {
  const e = /** @type {{code?: string, message?: string, data?: Record<string, any>, retryAfter?: number | null}} */ (error);
  switch (e?.code) {
    case "invalid_second_factor": return t("That code or passkey is not right.");
    case "sign_in_expired": return t("This sign-in has expired: type your password again.");
    case "locked_out": return lockedOut(e);
    case "passkeys_unavailable": return t("Passkeys need Rounds opened by its name (such as localhost), not by an IP address. Choose another way.");
    case "invalid_credentials": return t("That password is not right.");
    case "passkey_cancelled": case "passkey_exists": case "passkeys_unsupported": return e.message ?? "";
    case "conflict": return conflict ?? e.message ?? "";
    default: return explain(error);
  }
}

/**
 * One-time backup codes, shown this once, until the person says they kept them.
 * @param {string[]} codes
 * @param {() => void} onKept
 */
export function backupCodesBlock(codes, onKept) {
  const heading = h("h2", { tabindex: "-1", id: "backup-codes-heading" }, t("Your backup codes"));
  const block = h("section", { class: "card stack", id: "backup-codes-card", "aria-labelledby": "backup-codes-heading" },
    heading,
    h("p", { class: "notice" }, t("Write these down and keep them safe, away from your phone. Each works once, to sign in when your app or passkey is not at hand. They are not shown again.")),
    h("ul", { class: "list fingerprint", id: "backup-codes" }, codes.map((code) => h("li", {}, code))),
    h("button", { type: "button", class: "primary", onclick: () => { block.remove(); onKept(); } }, t("I have kept them")));
  return { el: block, focus: heading };
}

/**
 * An authenticator app to set up: the QR code to scan, the secret to type instead, and
 * the first code it shows to confirm it.
 * @param {TotpSetup} setup
 * @param {(code: string) => Promise<void>} confirm refused with an error to show
 */
export function totpSetupBlock(setup, confirm) {
  const code = h("input", { id: "totp-setup-code", name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: true, maxlength: "10" });
  const message = h("p", { class: "error", role: "alert", id: "totp-setup-error" });
  const submit = h("button", { type: "submit", class: "primary" }, t("Confirm the app"));
  const form = h("form", {
    class: "stack", id: "totp-setup", "aria-describedby": "totp-setup-error",
    onsubmit: async (/** @type {SubmitEvent} */ event) => {
      event.preventDefault();
      submit.disabled = true;
      message.textContent = "";
      try {
        await confirm(code.value.replace(/\s/g, ""));
      } catch (error) {
        message.textContent = factorRefusal(error);
        code.value = "";
        code.focus();
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("p", {}, t("Scan this code with your authenticator app, or type the key below into it.")),
  h("img", { src: setup.qr_svg, alt: t("QR code for your authenticator app"), class: "qr", width: "200", height: "200" }),
  h("p", {}, t("Key to type:"), " ", h("code", { class: "fingerprint", id: "totp-secret" }, setup.secret)),
  h("div", {}, h("label", { for: "totp-setup-code" }, t("The code your app shows")), code),
  message, submit);
  return { el: form, focus: code };
}

/**
 * The password once more before a factor goes; resolves to it, or null when cancelled.
 * @param {HTMLElement} slot where the prompt is drawn (emptied after)
 * @param {string} why what the password confirms
 * @returns {Promise<string | null>}
 */
function askPassword(slot, why) {
  return new Promise((resolve) => {
    const password = h("input", { id: "factor-password", type: "password", autocomplete: "current-password", required: true });
    const done = (/** @type {string | null} */ value) => { slot.replaceChildren(); resolve(value); };
    slot.replaceChildren(h("form", { class: "stack", id: "factor-password-form", onsubmit: (/** @type {SubmitEvent} */ event) => { event.preventDefault(); done(password.value); } },
      h("p", {}, why),
      h("div", {}, h("label", { for: "factor-password" }, t("Your password")), password),
      h("div", { class: "row" },
        h("button", { type: "submit", class: "danger" }, t("Confirm")),
        h("button", { type: "button", onclick: () => done(null) }, t("Cancel")))));
    password.focus();
  });
}

/** The profile's "Sign-in security" card, loaded as it is shown. */
export function factorsCard() {
  const body = h("div", { class: "stack" });
  const slot = h("div", { class: "stack", id: "factor-slot" });
  const error = h("p", { class: "error", role: "alert", id: "factor-error" });
  /** @param {string[]} codes */
  const showCodes = (codes) => {
    if (!codes.length) return draw();
    const block = backupCodesBlock(codes, () => draw());
    slot.replaceChildren(block.el);
    block.focus.focus();
  };
  /** @param {() => Promise<void>} work @param {string} [conflict] */
  const attempt = async (work, conflict) => {
    error.textContent = "";
    try {
      await work();
    } catch (e) {
      error.textContent = factorRefusal(e, conflict);
    }
  };
  const lastFactor = t("Your role requires a second factor: add another way before removing this one.");
  const setUpApp = () => attempt(async () => {
    const setup = await post("/api/auth/second-factor/totp");
    const block = totpSetupBlock(setup, async (code) => {
      const answer = await post("/api/auth/second-factor/totp/confirm", { code });
      showCodes(answer.backup_codes);
    });
    slot.replaceChildren(block.el, h("button", { type: "button", onclick: () => draw() }, t("Cancel")));
    block.focus.focus();
  });
  const removeApp = () => attempt(async () => {
    const password = await askPassword(slot, t("Type your password to remove the authenticator app."));
    if (password === null) return;
    await post("/api/auth/second-factor/totp/remove", { password });
    await draw();
  }, lastFactor);
  const nameField = h("input", { id: "passkey-name", maxlength: "60", autocomplete: "off" });
  const addPasskey = () => attempt(async () => {
    const ceremony = await post("/api/auth/second-factor/passkeys/options");
    const credential = await createCredential(ceremony.options);
    const answer = await post("/api/auth/second-factor/passkeys", { ceremony: ceremony.ceremony, credential, name: nameField.value.trim() });
    nameField.value = "";
    showCodes(answer.backup_codes);
  });
  /** @param {PasskeyCard} passkey */
  const removePasskey = (passkey) => attempt(async () => {
    const password = await askPassword(slot, t("Type your password to remove the passkey “{name}”.", { name: passkey.name }));
    if (password === null) return;
    await post(`/api/auth/second-factor/passkeys/${passkey.id}/remove`, { password });
    await draw();
  }, lastFactor);
  const newCodes = () => attempt(async () => {
    const password = await askPassword(slot, t("Type your password to make new backup codes: the old ones stop working."));
    if (password === null) return;
    const answer = await post("/api/auth/second-factor/backup-codes", { password });
    showCodes(answer.backup_codes);
  }, t("Set up an authenticator app or a passkey first."));
  const draw = async () => {
    slot.replaceChildren();
    try {
      /** @type {SecondFactors} */
      const factors = await get("/api/auth/second-factor");
      const any = factors.totp || factors.passkeys.length > 0;
      body.replaceChildren(...[
        factors.required ? h("p", { class: "notice" }, t("Your role requires a second factor at every sign-in.")) : null,
        h("h3", {}, t("Authenticator app")),
        factors.totp
          ? h("div", { class: "row" }, h("span", { class: "tag", id: "totp-state" }, t("On")),
            h("button", { type: "button", class: "danger", onclick: removeApp }, t("Remove the app")))
          : h("div", { class: "row" }, h("span", { class: "tag", id: "totp-state" }, t("Off")),
            h("button", { type: "button", onclick: setUpApp }, t("Set up an app"))),
        h("h3", {}, t("Passkeys")),
        h("ul", { class: "list", id: "my-passkeys", "aria-label": t("My passkeys") }, factors.passkeys.map((passkey) => h("li", { class: "card stack", dataset: { passkey: passkey.id } },
          h("strong", {}, passkey.name),
          h("div", { class: "sub" }, t("Added {time}", { time: fullTime(passkey.created_at) })),
          h("div", { class: "sub" }, passkey.last_used_at ? t("Last used {time}", { time: fullTime(passkey.last_used_at) }) : t("Not used yet")),
          h("button", { type: "button", class: "danger", onclick: () => removePasskey(passkey) }, t("Remove this passkey"))))),
        h("div", {}, h("label", { for: "passkey-name" }, t("Name of a new passkey (optional)")), nameField),
        h("button", { type: "button", onclick: addPasskey }, t("Add a passkey")),
        h("h3", {}, t("Backup codes")),
        h("p", { id: "backup-codes-left" }, any
          ? tn(factors.backup_codes_left, "{count} backup code left.", "{count} backup codes left.")
          : t("Backup codes come with your first app or passkey.")),
        any ? h("button", { type: "button", onclick: newCodes }, t("New backup codes")) : null,
      ].filter((node) => node !== null));
    } catch (e) {
      error.textContent = explain(e);
    }
  };
  draw();
  return h("section", { class: "card stack", id: "sign-in-security" },
    h("h2", {}, t("Sign-in security")),
    h("p", { class: "muted" }, t("A second factor after your password: a code from an authenticator app, or a passkey (fingerprint, face or device PIN).")),
    body, slot, error);
}
