// @ts-check
// How strong a chosen passphrase is, before it protects a key backup the
// server holds: the rule of client/passphrase.py (docs/crypto.md §4).
//
// The server keeps the sealed backup, so whoever holds the database can guess
// offline. The floor (crypto/backup.js: 16 characters, 8 distinct, two
// classes) stops the obvious; zxcvbn's estimate stops the guessable that pass
// it (`Password12345678`, `Summer2024Summer`, `hospital hospital`): at least
// 10^12 guesses, counting the user's own name and login and the hospital's
// words as known words. zxcvbn-ts and its English and French dictionaries
// (frontend/vendor/zxcvbn-ts, about 2 MB) are imported only when a passphrase
// is checked, so a sign-in with the generated recovery code never loads them.
// zxcvbn's advice is English only: in another language the refusal says our own
// sentence instead, and the floor's rules are said in the language on screen.
import { checkPassphraseStrength, normalisePassphrase, weakPassphrase } from "./crypto.js";
import { N_, language, t } from "./i18n.js";

export const MIN_GUESSES_LOG10 = 12;
// Words everyone in a hospital would try first (client/passphrase.py CONTEXT_WORDS).
export const CONTEXT_WORDS = ["rounds", "hospital", "hôpital", "chu", "clinique", "patient", "password"];
// zxcvbn's cost grows with the length; past 100 characters nothing is guessable.
const MAX_CHECKED = 100;
// The floor's rules (crypto/backup.js names the one that failed in its error's data),
// each a clause that ui.js explain() writes after "This passphrase is too easy to guess."
/** @type {Record<string, string>} */
const RULES = {
  length: N_("a passphrase needs at least {minimum} characters"),
  distinct: N_("a passphrase needs at least {minimum} different characters"),
  classes: N_("a passphrase needs two kinds of character (lowercase, uppercase, digits, others)"),
};
// When zxcvbn has no advice, or its advice is in another language than the screen's.
const ADVICE = N_("add words that are not about you or your work");

// The part of zxcvbn-ts's API used here (the vendored modules are loaded by URL, untyped).
/**
 * @typedef {{check: (password: string, userInputs: string[]) => {guessesLog10: number,
 *   feedback: {warning: string | null, suggestions?: string[]}}}} Estimator
 */

/** @type {Promise<Estimator> | null} */
let estimator = null;

/**
 * zxcvbn-ts with the common, English and French dictionaries, built once (lazily).
 * @returns {Promise<Estimator>}
 */
export function loadEstimator() {
  estimator ??= (async () => {
    const vendor = "../vendor/zxcvbn-ts";
    const [{ ZxcvbnFactory }, common, en, fr] = await Promise.all([
      import(`${vendor}/core/index.mjs`),
      import(`${vendor}/language-common/index.mjs`),
      import(`${vendor}/language-en/index.mjs`),
      import(`${vendor}/language-fr/index.mjs`),
    ]);
    return new ZxcvbnFactory({
      translations: en.translations,
      graphs: common.adjacencyGraphs,
      dictionary: { ...common.dictionary, ...en.dictionary, ...fr.dictionary },
    });
  })();
  estimator.catch(() => (estimator = null)); // a failed load (offline) is tried again next time
  return estimator;
}

/**
 * Each input, its words ("head_carol" → "head", "carol"), and its words run together.
 * @param {string[]} inputs
 */
export function knownWords(inputs) {
  /** @type {string[]} */
  const words = [];
  for (const text of inputs) {
    // Python's [\W_]+: anything but letters, digits and combining marks.
    const parts = String(text || "").split(/[^\p{L}\p{N}\p{M}]+/u).filter(Boolean);
    if (parts.length) words.push(text, ...parts, parts.join(""));
  }
  return [...new Set(words)].filter(Boolean);
}

/**
 * The floor (crypto/backup.js checkPassphraseStrength), refused in the language on screen.
 * @param {string} passphrase
 */
export function checkRules(passphrase) {
  try {
    checkPassphraseStrength(passphrase);
  } catch (error) {
    const { code, data } = /** @type {{code?: string, data?: {rule?: string, minimum?: number}}} */ (error);
    const rule = RULES[String(data?.rule)];
    if (code === "weak_passphrase" && rule) throw weakPassphrase(t(rule, { minimum: data?.minimum }), data);
    throw error;
  }
}

/**
 * Refuse a passphrase too easy to guess; resolve to zxcvbn's log10 of the guesses.
 * `userInputs`: the user's login and display name. Rejects with a CryptoError
 * `weak_passphrase` naming the floor's rule, or zxcvbn's own advice (in English only;
 * our own sentence in another language).
 * @param {string} passphrase
 * @param {string[]} [userInputs]
 */
export async function checkPassphrase(passphrase, userInputs = []) {
  checkRules(passphrase);
  const zxcvbn = await loadEstimator();
  const text = normalisePassphrase(passphrase).slice(0, MAX_CHECKED);
  const result = zxcvbn.check(text, knownWords([...userInputs, ...CONTEXT_WORDS]));
  if (result.guessesLog10 < MIN_GUESSES_LOG10) {
    const advice = language() === "en"
      ? [result.feedback.warning, ...(result.feedback.suggestions || [])].filter(Boolean).join(" ") : "";
    throw weakPassphrase(advice || t(ADVICE),
      { guesses_log10: result.guessesLog10 });
  }
  return result.guessesLog10;
}
