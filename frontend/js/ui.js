// Small DOM helpers shared by the views: element building (text only, never
// innerHTML, so decrypted content cannot inject markup), times, messages.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let toastTimer = null;

export function toast(message, ms = 5000) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), ms);
}

export function shortTime(iso) {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  const hm = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return today ? hm : `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${hm}`;
}

/** Day, month and time, even today: photos are compared by date. */
export function dayTime(iso) {
  const date = new Date(iso);
  return `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
}

export function fullTime(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
}

export function birthDate(iso) {
  const [y, m, d] = iso.split("-");
  return `${d}/${m}/${y}`;
}

export function patientLabel(p) {
  return `${p.family_name.toUpperCase()} ${p.given_name}`;
}

const MESSAGES = {
  network: "The server cannot be reached. Check the network and try again.",
  not_found: "Not found, or not in your departments.",
  forbidden: "Only a department head can do this.",
  thread_closed: "This conversation is closed to new messages.",
  wrong_passphrase: "This recovery code or passphrase does not open your keys. Check it and try again.",
  weak_passphrase: "This passphrase is too easy to guess.",
  no_admin_key: "The hospital has not set up its institution key yet; messages cannot be encrypted. Contact IT.",
  admin_key_mismatch: "The institution key the server shows is not the one configured for this hospital. Do not continue; contact IT.",
  membership_unverified: "This department's signed membership does not verify. Contact IT.",
  unverified_member: "A member's admission is not signed by a head yet.",
  no_room_key: "This device has no key for these messages yet; it arrives when a colleague's device shares it.",
  compliance_key_mismatch: "The compliance key the server shows is not the one configured for this hospital. Contact IT.",
  last_head: "A department needs at least one head.",
  already_member: "Already a member.",
  rate_limited: "Too fast; wait a moment.",
  attachment_mismatch: "Refused: the server lists other photos, keywords or consent than the sender signed. Tell IT.",
  hash_mismatch: "Refused: the stored photo is not the one the sender signed for. Tell IT.",
  invalid_photo_body: "Refused: this photo message is malformed.",
  upload_too_large: "This photo is too large for the server.",
  attachment_invalid: "The server refused the photos (an upload was missing or already used); send them again.",
};

/** A sentence for a person, from any error this client or the server raises. */
export function explain(error) {
  if (error?.code === "weak_passphrase") return `${MESSAGES.weak_passphrase} ${capitalise(error.message)}.`;
  return MESSAGES[error?.code] || error?.message || String(error);
}

function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}
