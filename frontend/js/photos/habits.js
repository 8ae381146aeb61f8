// @ts-check
// What the photo sheet remembers on this device, per user, so the common photo
// is a few taps: the keywords last used and those starred (favourites), and
// the consent each patient gave for their stay.
//
// Kept in localStorage under the user's id: codes of the nomenclature and
// consent scopes keyed by patient id, nothing that names a patient. The
// client does not know the admission (the patient record gives only its
// ward), so a consent is remembered for the patient on that ward, and for
// CONSENT_DAYS after it was last confirmed: a move to another ward or a long
// stay asks again. Every photo still carries its own consent, signed in its
// body and listed in its attachment (docs/media.md); this only presets the
// choice, shown with the date it was given.

const RECENT = 6; // keywords offered first
export const CONSENT_DAYS = 7;
const DAY = 24 * 60 * 60 * 1000;

/**
 * @typedef {{recent: string[], favourites: string[], consents: Record<string, {scope: string, at: number}>}} Habits
 */

/** @param {number} userId */
const storageKey = (userId) => `rounds.photo-habits.${userId}`;

/**
 * @param {number} userId
 * @returns {Habits}
 */
export function loadHabits(userId) {
  /** @type {Habits} */
  const empty = { recent: [], favourites: [], consents: {} };
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey(userId)) ?? "null");
    if (!saved || typeof saved !== "object") return empty;
    const codes = (/** @type {unknown} */ list) => (Array.isArray(list) ? list.filter((c) => typeof c === "string") : []);
    return {
      recent: codes(saved.recent).slice(0, RECENT),
      favourites: codes(saved.favourites),
      consents: saved.consents && typeof saved.consents === "object" ? saved.consents : {},
    };
  } catch {
    return empty; // storage disabled or a damaged entry: nothing remembered
  }
}

/** @param {number} userId @param {Habits} habits */
function save(userId, habits) {
  try {
    localStorage.setItem(storageKey(userId), JSON.stringify(habits));
  } catch {
    // storage full or disabled: the sheet still works, it just asks again
  }
}

/** @param {number} patientId @param {string | null} ward */
const stayKey = (patientId, ward) => `${patientId}|${ward ?? ""}`;

/**
 * The consent remembered for this patient's stay, if still fresh.
 * @param {Habits} habits @param {number} patientId @param {string | null} ward
 * @returns {{scope: string, at: number} | null}
 */
export function rememberedConsent(habits, patientId, ward, now = Date.now()) {
  const entry = habits.consents[stayKey(patientId, ward)];
  if (!entry || typeof entry.scope !== "string" || typeof entry.at !== "number") return null;
  return now - entry.at < CONSENT_DAYS * DAY ? entry : null;
}

/**
 * After a photo is sent: its keywords first among the recent, the consent kept for the stay.
 * @param {number} userId
 * @param {{keywords: string[], patientId: number | null, ward: string | null, consent: string}} sent
 */
export function rememberSent(userId, { keywords, patientId, ward, consent }, now = Date.now()) {
  const habits = loadHabits(userId);
  habits.recent = [...new Set([...keywords, ...habits.recent])].slice(0, RECENT);
  if (patientId !== null) {
    habits.consents[stayKey(patientId, ward)] = { scope: consent, at: now };
    // Forget the stale ones, so the list does not grow with every patient seen.
    for (const [key, entry] of Object.entries(habits.consents)) if (now - entry.at >= CONSENT_DAYS * DAY) delete habits.consents[key];
  }
  save(userId, habits);
}

/**
 * Star or unstar a keyword; returns whether it is now a favourite.
 * @param {number} userId @param {string} code
 */
export function toggleFavourite(userId, code) {
  const habits = loadHabits(userId);
  const starred = !habits.favourites.includes(code);
  habits.favourites = starred ? [...habits.favourites, code] : habits.favourites.filter((c) => c !== code);
  save(userId, habits);
  return starred;
}

/** "Not my computer": the user's recent and starred keywords and the consents kept for
 * patients leave this browser with the rest. @param {number} userId */
export function forgetHabits(userId) {
  localStorage.removeItem(storageKey(userId));
}
