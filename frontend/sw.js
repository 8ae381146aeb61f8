// @ts-check
/// <reference lib="webworker" />
/* global self, caches, Response, URL */
// Rounds' service worker (docs/push.md), served at /sw.js so that its scope is the
// whole app. It does one thing: turn a Web Push into a notification, and a tap on
// the notification into the app's screen for it. It caches nothing and sees no
// patient data: a push names what happened and where ("advice.request", its
// department's name, its id), and the app, once unlocked, fetches the rest.
//
// The words: the page sends its titles, translated, in a "rounds.strings" message
// (frontend/js/notifications.js), kept in Cache Storage so that a push arriving while
// no page is open speaks the user's language; English until then.

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

/** @typedef {{urgent: string, request: string, message: string, other: string, body: string}} Strings */

/** @type {Strings} */
const ENGLISH = {
  urgent: "Urgent request — {department}",
  request: "Request for advice — {department}",
  message: "New message — {department}",
  other: "Rounds",
  body: "Open Rounds to read it.",
};
const STRINGS_CACHE = "rounds-push-strings";
const STRINGS_KEY = "/sw/strings";
const ROUTE = /^#\/(?:(?:t|r)\/\d{1,12})?$/;

sw.addEventListener("install", () => {
  sw.skipWaiting();
});

sw.addEventListener("activate", (event) => {
  event.waitUntil(sw.clients.claim());
});

sw.addEventListener("message", (event) => {
  const data = event.data;
  if (data?.type === "rounds.strings") event.waitUntil(keepStrings(data.strings));
});

sw.addEventListener("push", (event) => {
  /** @type {Record<string, unknown>} */
  let data = {};
  try {
    data = event.data?.json() ?? {};
  } catch {
    // not JSON: still a notification, the generic one (a push must show something)
  }
  event.waitUntil(show(data));
});

sw.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openRoute(event.notification.data?.route));
});

/** Keep the page's titles: known keys only, short strings only. @param {unknown} strings */
async function keepStrings(strings) {
  if (!strings || typeof strings !== "object") return;
  /** @type {Record<string, string>} */
  const kept = {};
  for (const key of Object.keys(ENGLISH)) {
    const value = /** @type {Record<string, unknown>} */ (strings)[key];
    if (typeof value === "string" && value.length <= 200) kept[key] = value;
  }
  const cache = await caches.open(STRINGS_CACHE);
  await cache.put(STRINGS_KEY, new Response(JSON.stringify(kept), { headers: { "Content-Type": "application/json" } }));
}

/** @returns {Promise<Strings>} */
async function strings() {
  try {
    const cache = await caches.open(STRINGS_CACHE);
    const kept = await cache.match(STRINGS_KEY);
    return { ...ENGLISH, ...(kept ? await kept.json() : {}) };
  } catch {
    return ENGLISH;
  }
}

/** @param {string} template @param {string} department */
function fill(template, department) {
  return template.replace("{department}", department);
}

/** @param {unknown} value @returns {number | null} */
function id(value) {
  return Number.isSafeInteger(value) && /** @type {number} */ (value) > 0 ? /** @type {number} */ (value) : null;
}

/**
 * What a push shows: its title, tag and the route a tap opens. Urgent requests stay
 * on screen until answered (requireInteraction) and ring again when re-sent with the
 * same tag (renotify): the escalation's "alert again until acknowledged".
 * @param {Record<string, unknown>} data the push's JSON
 * @param {Strings} words
 */
function notificationFor(data, words) {
  const department = typeof data.department === "string" ? data.department.slice(0, 120) : "";
  const request = id(data.request);
  const thread = id(data.thread);
  if (data.kind === "advice.request" && request !== null) {
    const urgent = data.priority === "urgent";
    return {
      title: fill(urgent ? words.urgent : words.request, department),
      options: { body: words.body, tag: `request-${request}`, renotify: urgent, requireInteraction: urgent, data: { route: `#/r/${request}` } },
    };
  }
  if (data.kind === "message.new" && thread !== null) {
    return {
      title: fill(words.message, department),
      options: { body: words.body, tag: `thread-${thread}`, renotify: false, requireInteraction: false, data: { route: `#/t/${thread}` } },
    };
  }
  return { title: words.other, options: { body: words.body, tag: "rounds", data: { route: "#/" } } };
}

/** @param {Record<string, unknown>} data */
async function show(data) {
  const { title, options } = notificationFor(data, await strings());
  await sw.registration.showNotification(title, options);
}

/**
 * Bring the app to `route`: the open window if there is one (the page moves to the
 * route itself, keeping its keys unlocked), else a new one.
 * @param {unknown} route
 */
async function openRoute(route) {
  const hash = typeof route === "string" && ROUTE.test(route) ? route : "#/";
  const windows = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((client) => new URL(client.url).origin === sw.location.origin);
  if (open) {
    open.postMessage({ type: "rounds.open", route: hash });
    // Allowed only while handling a tap: from anywhere else the window moves, unfocused.
    return open.focus().catch(() => open);
  }
  return sw.clients.openWindow(`/${hash}`);
}

// For the browser tests (a synthetic notificationclick cannot be dispatched) and support staff.
Object.assign(sw, { rounds: { notificationFor, openRoute, strings } });
