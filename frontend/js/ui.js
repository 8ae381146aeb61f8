// @ts-check
// Small DOM helpers shared by the views: element building (text only, never
// innerHTML, so decrypted content cannot inject markup), times, messages.

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
  const hm = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return today ? hm : `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${hm}`;
}

/** Day, month and time, even today: photos are compared by date. @param {string} iso */
export function dayTime(iso) {
  const date = new Date(iso);
  return `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
}

/** @param {string} iso */
export function fullTime(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
}

/** @param {string} iso YYYY-MM-DD */
export function birthDate(iso) {
  const [y, m, d] = iso.split("-");
  return `${d}/${m}/${y}`;
}

/** @param {{family_name: string, given_name: string}} p */
export function patientLabel(p) {
  return `${p.family_name.toUpperCase()} ${p.given_name}`;
}

// In words a nurse at the bedside can act on. The end-to-end codes
// (docs/crypto.md §9, §11) say what the server did wrong, never blame the user.
/** @type {Record<string, string>} */
const MESSAGES = {
  internal_error: "The server could not finish this; it was tried again and did not work. Try again in a moment.",
  network: "The server cannot be reached. Check the network and try again.",
  not_found: "Not found, or not in your departments.",
  forbidden: "Only a department head can do this.",
  conflict: "Someone changed this department at the same moment. Try again.",
  thread_closed: "This conversation is closed to new messages.",
  last_head: "A department needs at least one head.",
  already_member: "Already a member.",
  rate_limited: "Too fast; wait a moment.",
  // Keys of this device.
  wrong_passphrase: "This recovery code or passphrase does not open your keys. Check it and try again.",
  weak_passphrase: "This passphrase is too easy to guess.",
  keys_not_set_up: "Set up your encryption keys on this device first.",
  recovery_needed: "Your keys already exist on another device: enter your recovery code to use them here.",
  backup_missing: "The server keeps no copy of your keys: ask IT.",
  invalid_key: "A key the server sent is not valid, so it was not used. Tell IT.",
  // The institution's keys (pins).
  pins_required: "This device has not confirmed your hospital's institution keys yet, so nothing can be encrypted. Sign in again to confirm them, or ask IT.",
  no_admin_key: "The hospital has not set up its institution key yet; messages cannot be encrypted. Contact IT.",
  admin_key_mismatch: "The hospital key the server shows is not the one configured for this hospital. Do not continue: nothing from this server can be trusted until IT has checked it.",
  compliance_key_mismatch: "The compliance key the server shows is not the one configured for this hospital, so nothing was encrypted for it. Do not continue; contact IT.",
  // Membership.
  membership_unverified: "This department's signed membership does not verify, so nothing is shown or sent in it. Contact IT.",
  membership_rollback: "The server showed this device an older membership of this department than it had already seen. Nothing is shown or sent until IT has checked the server.",
  membership_fork: "The server showed this device a membership of this department that differs from the one it (or the sender) saw. Do not rely on this department's messages; contact IT.",
  membership_withheld: "The sender had seen a change to this department's membership that the server is keeping from this device. This message is not shown; contact IT.",
  unverified_member: "A colleague's admission is not signed by a head yet, so no key is shared with them.",
  not_attested: "A head of this department must sign your admission (or your new key) before you can read or write here: ask them to compare your key fingerprint.",
  fingerprint_mismatch: "The colleague's key changed after you compared it: nothing was signed. Compare the fingerprint with them again.",
  keys_not_published: "This colleague has not set up their keys yet: sign their admission after they have signed in to Rounds once.",
  // Conversation keys.
  no_room_key: "This device has no key for these messages yet; it arrives when a colleague's device shares it.",
  key_version_rollback: "The server offered an older conversation key than this device already uses. Nothing was sent; contact IT.",
  key_version_stale: "This uses a conversation key from before someone left the department or changed their key, so it is refused.",
  key_version_unauthorized: "This conversation key was made by someone who was not a member of the department then, so it is refused. Contact IT.",
  key_commitment_mismatch: "The key the server handed over is not the one the sender committed to, so the message is refused. Contact IT.",
  // Messages.
  sender_not_member: "The sender was not a member of this department when this was written, so it is refused.",
  duplicate: "Delivered again by the server — the same message as above.",
  replay: "The server delivered another message under the name of one already shown, so it is refused. Contact IT.",
  envelope_mismatch: "The server filed this message under another conversation or sender than it was written for, so it is refused.",
  bad_signature: "The signature does not match the sender's key, so this is refused.",
  decryption_failed: "This does not decrypt with its conversation key, so it is refused.",
  invalid_envelope: "This message is malformed, so it is refused.",
  unsupported_version: "This was written in a format this version of Rounds does not read. Reload the page.",
  redacted: "This message was removed.",
  // Photos.
  attachment_mismatch: "Refused: the server lists other photos, keywords or consent than the sender signed. Tell IT.",
  hash_mismatch: "Refused: the stored photo is not the one the sender signed for. Tell IT.",
  invalid_photo_body: "Refused: this photo message is malformed.",
  upload_too_large: "This photo is too large for the server.",
  attachment_invalid: "The server refused the photos (an upload was missing or already used); send them again.",
};

/**
 * A sentence for a person, from any error this client or the server raises.
 * @param {unknown} error
 */
export function explain(error) {
  const e = /** @type {{code?: string, message?: string} | null | undefined} */ (error);
  if (e?.code === "weak_passphrase" && e.message) {
    return `${MESSAGES.weak_passphrase} ${capitalise(e.message.replace(/\.$/, ""))}.`;
  }
  return MESSAGES[String(e?.code)] || e?.message || String(error);
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
