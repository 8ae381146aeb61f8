// @ts-check
// Small DOM helpers shared by the views: element building (text only, never
// innerHTML, so decrypted content cannot inject markup), times, messages.

import { LANGUAGES, N_, chooseLanguage, formatDay, language, locale, parseDay, t } from "./i18n.js";

/**
 * An element: `attrs` are attributes, except `on…` (listeners), `class` and `dataset`;
 * null, undefined and false are left out, true is set as "". `children` are nodes or
 * text (nested lists flattened; null, undefined and false left out).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...unknown} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") {
      for (const [name, item] of Object.entries(value)) if (item !== null && item !== undefined) el.dataset[name] = String(item);
    }
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/**
 * An element of the shell (index.html) by its id; an error if the page lacks it.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let toastTimer;

/** @param {string} message @param {number} [ms] */
export function toast(message, ms = 5000) {
  const el = byId("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), ms);
}

/** @param {string} iso */
export function shortTime(iso) {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  const hm = date.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
  return today ? hm : `${date.toLocaleDateString(locale(), { day: "numeric", month: "short" })} ${hm}`;
}

/** Day, month and time, even today: photos are compared by date. @param {string} iso */
export function dayTime(iso) {
  const date = new Date(iso);
  return `${date.toLocaleDateString(locale(), { day: "numeric", month: "short" })} ${date.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" })}`;
}

/** @param {string} iso */
export function fullTime(iso) {
  return new Date(iso).toLocaleString(locale(), { dateStyle: "medium", timeStyle: "medium" });
}

/** A birth date (YYYY-MM-DD) the locale's way: dd/mm/yyyy. @param {string} iso */
export function birthDate(iso) {
  return formatDay(iso);
}

/**
 * A day typed the locale's way (dd/mm/yyyy), not the browser's date picker, whose order
 * follows the browser's own language (mm/dd/yyyy in a US Chromium) rather than the one
 * chosen in Rounds. `value` is YYYY-MM-DD; isoDay() reads the field back.
 * @param {Record<string, any>} attrs id, name, value…
 */
export function dateField(attrs) {
  const { value, ...rest } = attrs;
  const input = h("input", {
    ...rest, type: "text", inputmode: "numeric", autocomplete: "off", spellcheck: "false",
    placeholder: t("dd/mm/yyyy"), value: value ? formatDay(value) : null, dataset: { day: "" },
  });
  // A refusal holds until the day is typed again, not until the next submit, which the
  // browser's own validation would otherwise block.
  input.addEventListener("input", () => {
    input.setCustomValidity("");
    input.removeAttribute("aria-invalid");
  });
  return input;
}

/**
 * A dateField's day as YYYY-MM-DD ("" when empty), or null when it is not a day; the
 * field then says so to assistive technology and to the form's validation.
 * @param {HTMLInputElement} input
 */
export function isoDay(input) {
  const day = parseDay(input.value);
  input.setCustomValidity(day === null ? t("Type the date as dd/mm/yyyy.") : "");
  if (day === null) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  return day;
}

/**
 * The language switch (login screen and profile): a labelled list of the languages in
 * their own names; choosing one loads it, remembers it, then `redraw` repaints the screen.
 * @param {() => void} redraw
 */
export function languageSwitch(redraw) {
  const select = h("select", { id: "language", name: "language", autocomplete: "off" },
    Object.entries(LANGUAGES).map(([code, { name }]) => h("option", { value: code, lang: code, selected: code === language() }, name)));
  select.addEventListener("change", async () => {
    await chooseLanguage(/** @type {import("./i18n.js").Language} */ (select.value));
    redraw();
  });
  // The label in both languages, so a reader who cannot read the current one finds it.
  return h("div", { class: "language" }, h("label", { for: "language" }, t("Language · Langue")), select);
}

/** @param {{family_name: string, given_name: string}} p */
export function patientLabel(p) {
  return `${p.family_name.toUpperCase()} ${p.given_name}`;
}

// In words a nurse at the bedside can act on. The end-to-end codes
// (docs/crypto.md §9, §11) say what the server did wrong, never blame the user.
/** @type {Record<string, string>} */
const MESSAGES = {
  internal_error: N_("The server could not finish this; it was tried again and did not work. Try again in a moment."),
  network: N_("The server cannot be reached. Check the network and try again."),
  not_found: N_("Not found, or not in your departments."),
  forbidden: N_("Only a department head can do this."),
  conflict: N_("Someone changed this department at the same moment. Try again."),
  thread_closed: N_("This conversation is closed to new messages."),
  last_head: N_("A department needs at least one head."),
  already_member: N_("Already a member."),
  rate_limited: N_("Too fast; wait a moment."),
  // Keys of this device.
  wrong_passphrase: N_("This recovery code or passphrase does not open your keys. Check it and try again."),
  weak_passphrase: N_("This passphrase is too easy to guess."),
  keys_not_set_up: N_("Set up your encryption keys on this device first."),
  recovery_needed: N_("Your keys already exist on another device: enter your recovery code to use them here."),
  backup_missing: N_("The server keeps no copy of your keys: ask IT."),
  invalid_key: N_("A key the server sent is not valid, so it was not used. Tell IT."),
  // The institution's keys (pins).
  pins_required: N_("This device has not confirmed your hospital's institution keys yet, so nothing can be encrypted. Sign in again to confirm them, or ask IT."),
  no_admin_key: N_("The hospital has not set up its institution key yet; messages cannot be encrypted. Contact IT."),
  admin_key_mismatch: N_("The hospital key the server shows is not the one configured for this hospital. Do not continue: nothing from this server can be trusted until IT has checked it."),
  compliance_key_mismatch: N_("The compliance key the server shows is not the one configured for this hospital, so nothing was encrypted for it. Do not continue; contact IT."),
  // Membership.
  membership_unverified: N_("This department's signed membership does not verify, so nothing is shown or sent in it. Contact IT."),
  membership_rollback: N_("The server showed this device an older membership of this department than it had already seen. Nothing is shown or sent until IT has checked the server."),
  membership_fork: N_("The server showed this device a membership of this department that differs from the one it (or the sender) saw. Do not rely on this department's messages; contact IT."),
  membership_withheld: N_("The sender had seen a change to this department's membership that the server is keeping from this device. This message is not shown; contact IT."),
  unverified_member: N_("A colleague's admission is not signed by a head yet, so no key is shared with them."),
  not_attested: N_("A head of this department must sign your admission (or your new key) before you can read or write here: ask them to compare your key fingerprint."),
  fingerprint_mismatch: N_("The colleague's key changed after you compared it: nothing was signed. Compare the fingerprint with them again."),
  keys_not_published: N_("This colleague has not set up their keys yet: sign their admission after they have signed in to Rounds once."),
  // Conversation keys.
  no_room_key: N_("This device has no key for these messages yet; it arrives when a colleague's device shares it."),
  key_version_rollback: N_("The server offered an older conversation key than this device already uses. Nothing was sent; contact IT."),
  key_version_stale: N_("This uses a conversation key from before someone left the department or changed their key, so it is refused."),
  key_version_unauthorized: N_("This conversation key was made by someone who was not a member of the department then, so it is refused. Contact IT."),
  key_commitment_mismatch: N_("The key the server handed over is not the one the sender committed to, so the message is refused. Contact IT."),
  // Messages.
  sender_not_member: N_("The sender was not a member of this department when this was written, so it is refused."),
  duplicate: N_("Delivered again by the server — the same message as above."),
  replay: N_("The server delivered another message under the name of one already shown, so it is refused. Contact IT."),
  envelope_mismatch: N_("The server filed this message under another conversation or sender than it was written for, so it is refused."),
  bad_signature: N_("The signature does not match the sender's key, so this is refused."),
  decryption_failed: N_("This does not decrypt with its conversation key, so it is refused."),
  invalid_envelope: N_("This message is malformed, so it is refused."),
  unsupported_version: N_("This was written in a format this version of Rounds does not read. Reload the page."),
  redacted: N_("This message was removed."),
  // Photos.
  attachment_mismatch: N_("Refused: the server lists other photos, keywords or consent than the sender signed. Tell IT."),
  hash_mismatch: N_("Refused: the stored photo is not the one the sender signed for. Tell IT."),
  invalid_photo_body: N_("Refused: this photo message is malformed."),
  upload_too_large: N_("This photo is too large for the server."),
  attachment_invalid: N_("The server refused the photos (an upload was missing or already used); send them again."),
};

/**
 * A sentence for a person, from any error this client or the server raises.
 * @param {unknown} error
 */
export function explain(error) {
  const e = /** @type {{code?: string, message?: string} | null | undefined} */ (error);
  if (e?.code === "weak_passphrase" && e.message) {
    return `${t(MESSAGES.weak_passphrase)} ${capitalise(e.message.replace(/\.$/, ""))}.`;
  }
  const known = MESSAGES[String(e?.code)];
  return known ? t(known) : e?.message || String(error);
}

/**
 * Show `error` in an alert element: its sentence, and its code as data-code (for support and tests).
 * @param {HTMLElement} el
 * @param {unknown} error
 */
export function showError(el, error) {
  el.textContent = error ? explain(error) : "";
  const code = /** @type {{code?: string} | null | undefined} */ (error)?.code;
  if (code) el.dataset.code = code;
  else delete el.dataset.code;
}

/** @param {string} text */
function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}
