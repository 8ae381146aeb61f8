// @ts-check
// The institution's admin and compliance key fingerprints this browser
// trusts (docs/crypto.md §9, R0; client/pins.py for the SDK).
//
// The admin key roots every department's membership chain and the compliance
// key reads every room key version, so a server that could name its own
// would read everything. They must not come from the API or the database:
// hospital IT puts them in a deployment file, served beside the code as
// /app/institution.json (docs/browser.md). The browser remembers what it
// used (keystore.js, kept at sign-out). Without that file there is NO trust
// on first use: each key the file does not name is shown to the user, admin
// and compliance alike, who confirms its fingerprint against the one IT
// published before anything is verified or wrapped with it (views/pin.js).
// A server key other than the pin is refused where it is used
// (admin_key_mismatch, compliance_key_mismatch) and reported (mismatches).
import { get } from "./api.js";
import { loadPin, savePin } from "./keystore.js";

/** @typedef {"admin" | "compliance"} PinKind */

/**
 * The pinned fingerprints: each a fingerprint, or null (not configured and not confirmed
 * yet); source[kind] "deployment", "confirmed" or null.
 * @typedef {{admin: string | null, compliance: string | null,
 *   source: Partial<Record<PinKind, "deployment" | "confirmed" | null>>}} Pins
 */

/** @typedef {{fingerprint: string, public: {x25519: string, ed25519: string}} | null} ServerKey */
/** @typedef {{admin?: ServerKey, compliance?: ServerKey}} ServerKeys */

/** @type {PinKind[]} */
export const KINDS = ["admin", "compliance"];
const FINGERPRINT = /^[0-9a-f]{64}$/;

/**
 * 64 lowercase hex digits, from that or the grouped form people compare; null if not a fingerprint.
 * @param {unknown} text
 */
export function normaliseFingerprint(text) {
  const compact = String(text ?? "").replace(/\s+/g, "").toLowerCase();
  return FINGERPRINT.test(compact) ? compact : null;
}

/** @returns {Promise<{admin?: string | null, compliance?: string | null}>} */
/** @param {string} kind @returns {kind is PinKind} */
function isKind(kind) {
  return /** @type {string[]} */ (KINDS).includes(kind);
}

async function deploymentFile() {
  try {
    const response = await fetch("/app/institution.json", { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) return {};
    const data = await response.json();
    return { admin: normaliseFingerprint(data.admin), compliance: normaliseFingerprint(data.compliance) };
  } catch {
    return {};
  }
}

/**
 * {admin, compliance, source}: each pin a fingerprint, or null (not configured and
 * not confirmed yet); source[kind] "deployment", "confirmed" or null.
 * @returns {Promise<Pins>}
 */
export async function loadPins() {
  const file = await deploymentFile();
  /** @type {Pins} */
  const pins = { admin: null, compliance: null, source: {} };
  for (const kind of KINDS) {
    const remembered = await loadPin(kind);
    if (file[kind]) {
      // The deployment file is IT's word, at the level of the code itself.
      if (remembered !== file[kind]) await savePin(kind, file[kind]);
      pins[kind] = file[kind];
      pins.source[kind] = "deployment";
    } else {
      pins[kind] = remembered;
      pins.source[kind] = remembered ? "confirmed" : null;
    }
  }
  return pins;
}

/**
 * The server's current institution keys ({admin, compliance}, each {fingerprint, public} or null).
 * @returns {Promise<ServerKeys>}
 */
export function serverInstitutionKeys() {
  return get("/api/keys/institution");
}

/**
 * The kinds the user must still confirm: no pin, and the server has a key to show.
 * @param {Pins} pins
 * @param {ServerKeys | null | undefined} server
 */
export function unconfirmed(pins, server) {
  return KINDS.filter((kind) => !pins[kind] && server?.[kind]?.fingerprint);
}

/**
 * Server keys that are not the pinned ones: [{kind, code, pinned, server}].
 * @param {Pins} pins
 * @param {ServerKeys | null | undefined} server
 */
export function mismatches(pins, server) {
  /** @type {{kind: PinKind, code: string, pinned: string, server: string}[]} */
  const found = [];
  for (const kind of KINDS) {
    const pinned = pins[kind];
    const key = server?.[kind];
    if (pinned && key && key.fingerprint !== pinned) found.push({ kind, code: `${kind}_key_mismatch`, pinned, server: key.fingerprint });
  }
  return found;
}

/**
 * Remember a key the user compared with IT's published fingerprint. Never over a
 * pin: a key that changed is refused, not re-confirmed (IT replaces the file).
 * @param {Pins} pins updated in place
 * @param {string} kind
 * @param {string} fingerprint as the user typed or confirmed it
 */
export async function confirmPin(pins, kind, fingerprint) {
  if (!isKind(kind)) throw new TypeError(`unknown institution key ${kind}`);
  if (pins[kind]) throw new Error(`the ${kind} key is pinned already`);
  const checked = normaliseFingerprint(fingerprint);
  if (!checked) throw new TypeError("not a fingerprint");
  await savePin(kind, checked);
  pins[kind] = checked;
  pins.source[kind] = "confirmed";
}
