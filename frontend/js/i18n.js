// @ts-check
// The browser's languages (docs/i18n.md). English is the source text: a string
// is written in English where it is shown, wrapped in t() (or tn() for a count,
// or marked N_() in a table and passed to t() where it is shown), and French is
// the catalogue frontend/locales/fr.json, keyed by that English text. The
// language comes from the switch (a cookie the server reads too, so its
// refusals speak the same language), else from the browser's languages, else
// English. Dates are written the locale's way: dd/mm/yyyy in both, as in the
// hospitals Rounds serves (en-GB and fr-FR).

/** @typedef {"en" | "fr"} Language */
/** @typedef {string | Record<string, string>} Entry a translation, or one per plural category */

/** @type {Record<Language, {tag: string, name: string}>} */
export const LANGUAGES = {
  en: { tag: "en-GB", name: "English" },
  fr: { tag: "fr-FR", name: "Français" },
};
// Django's LANGUAGE_COOKIE_NAME: the server answers in the language chosen here.
const COOKIE = "rounds_language";

/** @type {Language} */
let current = "en";
/** @type {Record<string, Entry>} */
let catalogue = {};

/** @param {string} value @returns {value is Language} */
function isLanguage(value) {
  return Object.hasOwn(LANGUAGES, value);
}

/** The language chosen with the switch, else the browser's first one Rounds speaks, else English. */
export function chosenLanguage() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith(`${COOKIE}=`))?.slice(COOKIE.length + 1) || "";
  if (isLanguage(cookie)) return cookie;
  for (const tag of navigator.languages?.length ? navigator.languages : [navigator.language]) {
    const base = (tag || "").toLowerCase().split("-")[0];
    if (isLanguage(base)) return base;
  }
  return /** @type {Language} */ ("en");
}

/**
 * Load a language's catalogue and translate the page's shell (index.html). Offline
 * or with a damaged catalogue the page stays in English rather than blank.
 * @param {Language} [language]
 */
export async function loadLanguage(language = chosenLanguage()) {
  /** @type {Record<string, Entry>} */
  let entries = {};
  if (language !== "en") {
    try {
      const response = await fetch(`/app/locales/${language}.json`, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`catalogue ${response.status}`);
      entries = await response.json();
    } catch (error) {
      console.error("the catalogue could not be loaded; showing English", error);
      language = "en";
    }
  }
  catalogue = entries;
  current = language;
  document.documentElement.lang = language;
  translateShell();
}

/**
 * Choose a language with the switch: remembered on this browser for a year, and sent to
 * the server with every request (the cookie), then loaded. The caller redraws the screen.
 * @param {Language} language
 */
export async function chooseLanguage(language) {
  document.cookie = `${COOKIE}=${language}; path=/; max-age=31536000; samesite=strict`;
  await loadLanguage(language);
}

/** The language on screen. */
export function language() {
  return current;
}

/** The locale's BCP 47 tag, for Intl and toLocale…String. */
export function locale() {
  return LANGUAGES[current].tag;
}

/** @param {string} text @param {Record<string, unknown>} params */
function fill(text, params) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => (Object.hasOwn(params, name) ? String(params[name]) : whole));
}

/**
 * `msgid` (English) in the language on screen, with `{name}` placeholders filled.
 * @param {string} msgid
 * @param {Record<string, unknown>} [params]
 */
export function t(msgid, params) {
  const entry = catalogue[msgid];
  const text = typeof entry === "string" && entry ? entry : msgid;
  return params ? fill(text, params) : text;
}

/**
 * A sentence about `count` things: `one` and `other` are the English forms, and
 * `one` is the key of the catalogue's entry, which holds a form per plural
 * category of the language (Intl.PluralRules: French says "0 photo", English "0 photos").
 * `{count}` is filled with the number.
 * @param {number} count
 * @param {string} one
 * @param {string} other
 * @param {Record<string, unknown>} [params]
 */
export function tn(count, one, other, params = {}) {
  const category = new Intl.PluralRules(locale()).select(count);
  const entry = catalogue[one];
  let text;
  if (entry && typeof entry === "object") text = entry[category] || entry.other || other;
  else text = category === "one" ? one : other;
  return fill(text, { count: count.toLocaleString(locale()), ...params });
}

/**
 * Marks `msgid` for the catalogue where it cannot be translated yet (a table built
 * when the module loads); t(msgid) translates it where it is shown.
 * @template {string} S
 * @param {S} msgid
 * @returns {S}
 */
export function N_(msgid) {
  return msgid;
}

/** The shell's fixed words: elements of index.html marked data-i18n (text) or data-i18n-label (aria-label). */
function translateShell() {
  for (const el of document.querySelectorAll("[data-i18n]")) {
    const node = /** @type {HTMLElement} */ (el);
    node.textContent = t(node.dataset.i18n || "");
  }
  for (const el of document.querySelectorAll("[data-i18n-label]")) {
    const node = /** @type {HTMLElement} */ (el);
    node.setAttribute("aria-label", t(node.dataset.i18nLabel || ""));
  }
}

/**
 * A calendar day (YYYY-MM-DD, as the API sends birth dates and filters) the locale's
 * way: 05/12/2026 in French and in British English.
 * @param {string} iso
 */
export function formatDay(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  if (!y || !m || !d) return iso;
  return new Intl.DateTimeFormat(locale(), { day: "2-digit", month: "2-digit", year: "numeric", timeZone: "UTC" })
    .format(new Date(Date.UTC(y, m - 1, d)));
}

/**
 * A day typed the locale's way (day/month/year; dots, dashes or spaces also divide),
 * or pasted as YYYY-MM-DD, as YYYY-MM-DD; "" when nothing was typed; null when it is
 * not a real day.
 * @param {string} text
 * @returns {string | null}
 */
export function parseDay(text) {
  const value = text.trim();
  if (!value) return "";
  let parts = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(value)?.slice(1, 4);
  if (!parts) {
    const dmy = /^(\d{1,2})[/.\-\s](\d{1,2})[/.\-\s](\d{4})$/.exec(value);
    if (!dmy) return null;
    parts = [dmy[3], dmy[2], dmy[1]];
  }
  const [y, m, d] = parts.map(Number);
  const day = new Date(Date.UTC(y, m - 1, d));
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d) return null;
  return `${String(y).padStart(4, "0")}-${String(m).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}
