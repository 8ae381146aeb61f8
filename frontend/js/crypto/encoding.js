// @ts-check
// Strict base64 and canonical JSON (docs/crypto.md §1), byte for byte as
// core/crypto/encoding.py: one value has one spelling, so a signer and a
// verifier never disagree about what was signed.
import { invalidEnvelope, unsupportedVersion } from "./errors.js";

export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER; // 2**53 - 1
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** @param {string} text */
export function utf8(text) {
  return encoder.encode(text);
}

/** @param {Uint8Array} bytes @returns {string} strictly: invalid UTF-8 throws */
export function fromUtf8(bytes) {
  return strictDecoder.decode(bytes);
}

/** @param {...Uint8Array} parts */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Constant time in the contents. @param {Uint8Array} a @param {Uint8Array} b */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** @param {Uint8Array} bytes */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** @param {string} hex */
export function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** @param {Uint8Array} bytes */
export function b64encode(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * @param {unknown} text
 * @param {{size?: number | null, field?: string}} [options] the exact length required; the field named in errors
 * @returns {Uint8Array}
 */
export function b64decode(text, { size = null, field = "value" } = {}) {
  if (typeof text !== "string") throw invalidEnvelope(`${field}: expected a base64 string`);
  if (text.length % 4 || !B64.test(text)) throw invalidEnvelope(`${field}: not standard padded base64`);
  let binary;
  try {
    binary = atob(text);
  } catch {
    throw invalidEnvelope(`${field}: not standard padded base64`);
  }
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  // Non-zero unused bits (QR== for QQ==) decode but are a second spelling.
  if (b64encode(bytes) !== text) throw invalidEnvelope(`${field}: non-canonical base64`);
  if (size !== null && bytes.length !== size) {
    throw invalidEnvelope(`${field}: expected ${size} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** @param {unknown} value @param {string} path */
function checkValue(value, path) {
  if (value === null || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw invalidEnvelope(`${path}: floats are not allowed`);
    if (Math.abs(value) > MAX_SAFE_INTEGER) throw invalidEnvelope(`${path}: integer outside ±(2**53 - 1)`);
    return;
  }
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw invalidEnvelope(`${path}: string is not valid Unicode`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkValue(item, `${path}[${i}]`));
    return;
  }
  if (typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      // eslint-disable-next-line no-control-regex -- the range is all of ASCII, control characters included
      if (!/^[\x00-\x7f]*$/.test(key)) throw invalidEnvelope(`${path}: keys must be ASCII strings`);
      checkValue(item, `${path}.${key}`);
    }
    return;
  }
  throw invalidEnvelope(`${path}: ${typeof value} is not allowed in canonical JSON`);
}

/** @param {any} value @returns {any} */
function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value !== null && typeof value === "object") {
    // Code-point order; keys are ASCII, so the default sort is that order.
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
  }
  return value;
}

/** @param {unknown} value @returns {Uint8Array} */
export function canonicalJson(value) {
  checkValue(value, "$");
  return utf8(JSON.stringify(sorted(value)));
}

/** @param {Uint8Array} bytes @returns {any} */
export function parseCanonicalJson(bytes) {
  let value;
  try {
    value = JSON.parse(fromUtf8(bytes));
  } catch {
    throw invalidEnvelope("not valid UTF-8 JSON");
  }
  // Re-serialising catches duplicate keys, spaces, key order, 1.0 and 1e2.
  if (!equalBytes(canonicalJson(value), bytes)) throw invalidEnvelope("JSON is not in canonical form");
  return value;
}

/** @param {unknown} value @returns {value is Record<string, any>} */
export function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** @param {object} obj @param {string[]} keys */
export function hasExactly(obj, keys) {
  const own = Object.keys(obj);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(obj, k));
}

/**
 * Check `v` first, so a future format is refused as such (unsupported_version)
 * rather than as a malformed one. `supported` is required: a default would let
 * a caller silently accept the wrong format.
 * @param {Record<string, any>} data
 * @param {string} what
 * @param {number} supported
 */
export function checkVersion(data, what, supported) {
  if (!Number.isInteger(supported)) throw new TypeError("checkVersion needs the supported version");
  const v = data.v;
  if (typeof v !== "number" || !Number.isInteger(v)) throw invalidEnvelope(`${what}: v must be an integer`);
  if (v !== supported) throw unsupportedVersion(`${what}: version ${v} is not supported`);
}

/**
 * @param {unknown} value
 * @param {string} name
 * @param {(message: string) => Error} [error] what to throw: invalid_envelope unless the caller says
 * @returns {number}
 */
export function checkId(value, name, error = invalidEnvelope) {
  if (typeof value !== "number" || !Number.isInteger(value)) throw error(`${name} must be an integer`);
  if (value < 1 || value > MAX_SAFE_INTEGER) throw error(`${name} must be between 1 and 2**53 - 1`);
  return value;
}

/** @param {unknown} value @param {string} name @returns {string} */
export function checkFingerprint(value, name) {
  if (typeof value !== "string" || !/^[0-9a-f]{64}$/.test(value)) {
    throw invalidEnvelope(`${name} must be 64 lowercase hex digits`);
  }
  return value;
}

/**
 * A SHA-256 digest in hex, as chain heads are written: 64 lowercase hex digits, like fingerprints.
 * @param {unknown} value
 * @param {string} name
 */
export function checkHash(value, name) {
  return checkFingerprint(value, name);
}

// RFC 3339 with a mandatory offset: what toISOString() and Python's
// isoformat() write, and nothing looser (core/crypto/encoding.py _TIMESTAMP).
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

/**
 * An RFC 3339 date and time with an offset (e.g. 2025-01-31T08:00:00Z), as
 * microseconds since the epoch, a BigInt: a Date would lose the microseconds
 * Python compares, and a Number loses them too after 2255, so two statements
 * could be ordered differently. Accepts and refuses as Python's
 * datetime.fromisoformat behind the same pattern: refuses 2025-02-30, 24:00,
 * 23:59:60, year 0, and offsets beyond 23:59 (the pattern itself), so both
 * clients agree on every chain.
 * @param {unknown} value
 * @param {string} name
 * @returns {bigint}
 */
export function parseTimestamp(value, name) {
  const m = typeof value === "string" ? TIMESTAMP.exec(value) : null;
  if (!m) throw invalidEnvelope(`${name} must be RFC 3339 with an offset, e.g. 2025-01-31T08:00:00Z`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0..99 as 1900..1999.
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  // Out-of-range fields roll over (2025-02-30 becomes March 2): a real date reads back the same.
  if (y < 1 || date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d
    || date.getUTCHours() !== h || date.getUTCMinutes() !== mi || date.getUTCSeconds() !== s) {
    throw invalidEnvelope(`${name} is not a valid date and time`);
  }
  let offsetMinutes = 0;
  if (m[8] !== "Z") {
    const [oh, om] = m[8].slice(1).split(":").map(Number);
    offsetMinutes = oh * 60 + om;
    if (offsetMinutes >= 24 * 60) throw invalidEnvelope(`${name} is not a valid date and time`);
    if (m[8][0] === "-") offsetMinutes = -offsetMinutes;
  }
  const micros = m[7] ? BigInt(m[7].slice(1).padEnd(6, "0")) : 0n;
  return BigInt(date.getTime() - offsetMinutes * 60000) * 1000n + micros;
}
