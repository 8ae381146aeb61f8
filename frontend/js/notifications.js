// @ts-check
// Notifications that reach a phone (docs/push.md): the service worker at /sw.js, this
// device's Web Push subscription, the profile's "Notifications on this device" card
// with the quiet mode, and the unread count in the tab title ("(3) Rounds") and on the
// app's badge. A push carries no patient data; the service worker shows the titles
// this page gives it, in the user's language, and a tap opens the screen it names.
// Permission is asked for only when the user taps "Turn on notifications".
import { api, get, post } from "./api.js";
import { t } from "./i18n.js";
import { h, showError } from "./ui.js";

/** @typedef {"unsupported" | "denied" | "on" | "off"} PushState */
/** @typedef {import("./app.js").App} App */

const UNREAD = /^\(\d+\) /;
const ROUTE = /^#\/(?:(?:t|r)\/\d{1,12})?$/;
// Whose subscription this browser holds: a subscription left by someone else (a
// session that ended without a sign-out here) is dropped, never taken over unasked.
const OWNER = "rounds.push.owner";

/** @type {App | null} */
let current = null;
let watching = false;
/** @type {number | null} */
let badged = null;

/** Whether this browser can receive Web Push at all (a secure context, a service worker, PushManager). */
export function supported() {
  return window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

/**
 * A session began (app.js startSession): keep the unread count in the title and the
 * badge, open the routes a tapped notification names, and register the worker.
 * @param {App} app
 */
export function attach(app) {
  current = app;
  app.session.addEventListener("change", () => showUnread());
  showUnread();
  if (!watching) {
    watching = true;
    const title = document.querySelector("title");
    // Screens write document.title (app.js mount, retitle): the count goes back in front.
    if (title) new MutationObserver(() => showUnread()).observe(title, { childList: true, characterData: true, subtree: true });
    if ("serviceWorker" in navigator) navigator.serviceWorker.addEventListener("message", onWorkerMessage);
  }
  if (supported()) registration().catch((error) => console.error("the service worker could not be registered", error));
}

/** @param {MessageEvent} event */
function onWorkerMessage(event) {
  const data = event.data;
  if (data?.type === "rounds.open" && typeof data.route === "string" && ROUTE.test(data.route) && current?.state) {
    current.go(data.route);
  }
}

/** The unread messages of every department, as the home screen counts them (state.js). */
function unreadTotal() {
  const state = current?.state;
  if (!state) return 0;
  let total = 0;
  for (const department of state.departments.keys()) total += state.departmentUnread(department);
  return total;
}

function showUnread() {
  const count = unreadTotal();
  const base = document.title.replace(UNREAD, "");
  const title = count ? `(${count}) ${base}` : base;
  if (document.title !== title) document.title = title;
  if (badged === count) return;
  badged = count;
  if (!("setAppBadge" in navigator)) return;
  (count ? navigator.setAppBadge(count) : navigator.clearAppBadge()).catch(() => {
    // an installed app only; a tab has no badge
  });
}

/** The worker's registration, once active, told the titles in the language on screen. */
async function registration() {
  await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  const ready = await navigator.serviceWorker.ready;
  ready.active?.postMessage({
    type: "rounds.strings",
    strings: {
      urgent: t("Urgent request — {department}"),
      request: t("Request for advice — {department}"),
      message: t("New message — {department}"),
      other: t("Rounds: something new"),
      body: t("Open Rounds to read it."),
    },
  });
  return ready;
}

/** @param {string} text base64url @returns {Uint8Array<ArrayBuffer>} */
function fromBase64Url(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

/** @param {ArrayBuffer | null} held @param {Uint8Array} wanted */
function sameKey(held, wanted) {
  if (!held || held.byteLength !== wanted.length) return false;
  const bytes = new Uint8Array(held);
  return bytes.every((byte, i) => byte === wanted[i]);
}

/** This browser's subscription, or null. */
async function subscription() {
  const held = await navigator.serviceWorker.getRegistration("/");
  return (await held?.pushManager.getSubscription()) ?? null;
}

/** @param {number} user @returns {Promise<PushState>} */
export async function pushState(user) {
  if (!supported()) return "unsupported";
  if (Notification.permission === "denied") return "denied";
  const held = await subscription();
  if (held && localStorage.getItem(OWNER) !== String(user)) {
    await held.unsubscribe().catch(() => {});
    return "off";
  }
  return held && Notification.permission === "granted" ? "on" : "off";
}

/**
 * Turn notifications on for this device: from a tap only (the permission prompt).
 * @param {number} user
 */
export async function enable(user) {
  if (!supported()) throw Object.assign(new Error(t("This browser cannot show Rounds notifications.")), { code: "push_unsupported" });
  if ((await Notification.requestPermission()) !== "granted") {
    throw Object.assign(new Error(t("Notifications are blocked for Rounds in this browser's settings.")), { code: "push_denied" });
  }
  const ready = await registration();
  const key = fromBase64Url((await get("/api/push/key")).key);
  let held = await ready.pushManager.getSubscription();
  if (held && !sameKey(held.options.applicationServerKey, key)) {
    await held.unsubscribe(); // made for a key the server no longer signs with (docs/push.md, "Keys")
    held = null;
  }
  try {
    held ??= await ready.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  } catch {
    throw Object.assign(new Error(t("The browser's push service could not be reached: try again later.")), { code: "push_service" });
  }
  await post("/api/push/subscriptions", held.toJSON());
  localStorage.setItem(OWNER, String(user));
}

/** Turn them off for this device: the server forgets the subscription, the browser drops it. */
export async function disable() {
  localStorage.removeItem(OWNER);
  const held = supported() ? await subscription() : null;
  if (!held) return;
  try {
    await api("DELETE", "/api/push/subscriptions", { endpoint: held.endpoint });
  } catch {
    // already gone there (signed out, or never sent): the browser's side still goes
  }
  await held.unsubscribe();
}

/**
 * Signing out (app.js signOut, not awaited): the count leaves the title at once; the
 * server forgets this device's subscription (it does so itself on sign-out too) and
 * the browser drops it. The DELETE races the logout: it is sent without api.js, whose
 * 401 would be taken for a session ended elsewhere.
 */
export async function beforeSignOut() {
  current = null;
  showUnread();
  localStorage.removeItem(OWNER);
  const held = supported() ? await subscription().catch(() => null) : null;
  if (!held) return;
  const csrf = decodeURIComponent(document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/)?.[1] ?? "");
  await fetch("/api/push/subscriptions", {
    method: "DELETE", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: JSON.stringify({ endpoint: held.endpoint }),
  }).catch(() => {});
  await held.unsubscribe().catch(() => {});
}

/**
 * The profile's card (views/profile.js): notifications on this device, and the quiet mode.
 * @param {App} app
 */
export function notificationsCard(app) {
  const user = app.session.user.id;
  const status = h("p", { id: "push-status", role: "status" });
  const error = h("p", { class: "error", role: "alert", id: "push-error" });
  const toggle = h("button", { type: "button", id: "push-toggle", hidden: true });
  const quiet = h("input", { type: "checkbox", id: "quiet-off-duty", disabled: true });
  const words = {
    on: t("On: this device shows Rounds notifications while you are signed in here."),
    off: t("Off on this device."),
    denied: t("Blocked in this browser's settings: allow notifications for Rounds there, then come back."),
    unsupported: t("This browser cannot show Rounds notifications."),
  };
  /** @param {PushState} state */
  const draw = (state) => {
    status.textContent = words[state];
    status.dataset.state = state;
    toggle.hidden = state === "unsupported" || state === "denied";
    toggle.textContent = state === "on" ? t("Turn off notifications") : t("Turn on notifications");
    toggle.disabled = false;
  };
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    showError(error, null);
    try {
      if (status.dataset.state === "on") await disable();
      else await enable(user);
    } catch (e) {
      showError(error, e);
    }
    draw(await pushState(user));
  });
  quiet.addEventListener("change", async () => {
    showError(error, null);
    try {
      await api("PUT", "/api/push/preferences", { quiet_off_duty: quiet.checked });
    } catch (e) {
      quiet.checked = !quiet.checked;
      showError(error, e);
    }
  });
  pushState(user).then(draw, () => draw("unsupported"));
  get("/api/push/preferences").then((prefs) => {
    quiet.checked = prefs.quiet_off_duty;
    quiet.disabled = false;
  }, (e) => showError(error, e));
  return h("section", { class: "card stack", id: "my-notifications", "aria-labelledby": "notifications-title" },
    h("h2", { id: "notifications-title" }, t("Notifications on this device")),
    status, toggle,
    h("div", { class: "row" }, quiet, h("label", { for: "quiet-off-duty" }, t("Quiet when off duty"))),
    h("p", { class: "muted" }, t("Urgent requests always ring. With quiet mode, new messages wait while you hold no on-call shift.")),
    h("p", { class: "muted" }, t("A notification names the department only: open Rounds to read what is waiting.")),
    error);
}
