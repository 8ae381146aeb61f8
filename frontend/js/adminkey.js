// @ts-check
// The institution's admin key, used in this browser for one signature: the
// statement that appoints a department's first head (docs/crypto.md §6); and
// its compliance key, used by an officer's console to open a case's room key
// wraps (views/compliancecase.js), read and wiped the same way.
//
// IT keeps the key off the server, in a file (what `manage.py appoint_head
// --key-file` reads and `seed_demo` writes under var/demo-keys/ for the
// demo): the 64-byte private identity as 128 hex digits. The file is read
// here, checked against the PINNED admin fingerprint (never the server's
// word), used once and wiped: it is not uploaded, not stored, not kept in a
// variable after the signature. The bytes are parsed from the file's
// ArrayBuffer, not a string, because a JavaScript string cannot be wiped.
import * as c from "./crypto.js";
import { N_, t } from "./i18n.js";

const KEY_HEX_DIGITS = c.IDENTITY_SIZE * 2;
const MAX_FILE_BYTES = 4096; // a key file is 128 digits and a newline; anything larger is not one

/** @import { Identity } from "./crypto.js" */

export class AdminKeyRefused extends Error {
  /** @param {string} code @param {string} message @param {Record<string, any>} [data] */
  constructor(code, message, data = {}) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

// What a refused file is told, by kind of key (ui.js explain() shows these messages:
// their codes are not in its table), each sentence whole.
/** @type {Record<string, {malformed: string, missing: string, other: string}>} */
const REFUSALS = {
  admin: {
    malformed: N_("This file is not an institution key file (it should hold 128 hexadecimal digits). Nothing was signed."),
    missing: N_("Choose the institution's admin key file first."),
    other: N_("This key file is not the institution's admin key configured for this hospital (its fingerprint differs). Nothing was signed."),
  },
  compliance: {
    malformed: N_("This file is not an institution key file (it should hold 128 hexadecimal digits). Nothing was decrypted."),
    missing: N_("Choose the institution's compliance key file first."),
    other: N_("This key file is not the institution's compliance key configured for this hospital (its fingerprint differs). Nothing was decrypted."),
  },
};

function malformed(kind = "admin") {
  return new AdminKeyRefused("malformed_key_file", t(REFUSALS[kind].malformed));
}

/** @param {number} byte */
function nibble(byte) {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30; // 0-9
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10; // a-f, A-F
  return -1;
}

const isSpace = (/** @type {number} */ byte) => byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);

/**
 * The 64 private bytes of a key file's bytes (hex, surrounding white space allowed).
 * @param {Uint8Array} bytes
 */
export function parseKeyFile(bytes) {
  let start = 0;
  let end = bytes.length;
  while (start < end && isSpace(bytes[start])) start++;
  while (end > start && isSpace(bytes[end - 1])) end--;
  if (end - start !== KEY_HEX_DIGITS) throw malformed();
  const secret = new Uint8Array(c.IDENTITY_SIZE);
  for (let i = 0; i < secret.length; i++) {
    const high = nibble(bytes[start + 2 * i]);
    const low = nibble(bytes[start + 2 * i + 1]);
    if (high < 0 || low < 0) {
      secret.fill(0);
      throw malformed();
    }
    secret[i] = (high << 4) | low;
  }
  return secret;
}

/** @param {Identity | null} identity */
function wipeIdentity(identity) {
  if (!identity) return;
  for (const part of [identity.boxSecret, identity.seed, identity.signSecret]) part?.fill(0);
}

/**
 * Open `file`, check it is the pinned admin key, call `use(identity)` and wipe every copy
 * of the private bytes this code made, whatever happens. Returns what `use` returns.
 * @template T
 * @param {File | null | undefined} file
 * @param {string | null | undefined} pinnedFingerprint
 * @param {(identity: Identity) => T | Promise<T>} use
 * @returns {Promise<T>}
 */
export function withAdminKey(file, pinnedFingerprint, use) {
  return withInstitutionKey("admin", file, pinnedFingerprint, use);
}

/**
 * The same for either institution key, `kind` "admin" or "compliance": refused unless its
 * fingerprint is the PINNED one of that kind (not_the_admin_key, not_the_compliance_key).
 * @template T
 * @param {string} kind
 * @param {File | null | undefined} file
 * @param {string | null | undefined} pinnedFingerprint
 * @param {(identity: Identity) => T | Promise<T>} use
 * @returns {Promise<T>}
 */
export async function withInstitutionKey(kind, file, pinnedFingerprint, use) {
  if (!REFUSALS[kind]) throw new TypeError(`unknown institution key ${kind}`);
  if (!pinnedFingerprint) {
    throw new AdminKeyRefused("pins_required", `Confirm the institution's ${kind} key fingerprint first.`);
  }
  if (!file) throw new AdminKeyRefused("no_key_file", t(REFUSALS[kind].missing));
  if (file.size > MAX_FILE_BYTES) throw malformed(kind);
  const raw = new Uint8Array(await file.arrayBuffer());
  /** @type {Uint8Array | null} */
  let secret = null;
  /** @type {Identity | null} */
  let identity = null;
  try {
    try {
      secret = parseKeyFile(raw);
    } catch {
      throw malformed(kind);
    }
    try {
      identity = c.identityFromBytes(secret);
    } catch {
      throw malformed(kind);
    }
    if (identity.fingerprint !== pinnedFingerprint) {
      throw new AdminKeyRefused(`not_the_${kind}_key`, t(REFUSALS[kind].other),
        { file: identity.fingerprint, pinned: pinnedFingerprint });
    }
    return await use(identity);
  } finally {
    raw.fill(0);
    secret?.fill(0);
    wipeIdentity(identity);
  }
}
