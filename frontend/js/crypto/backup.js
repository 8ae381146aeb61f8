// @ts-check
// Key backup blob v1 (docs/crypto.md §4), as core/crypto/backup.py: the
// identity sealed under Argon2id(recovery secret). The server keeps the blob
// and can guess offline, hence the strength rule and the limits.
import sodium from "./sodium.js";
import { utf8 } from "./encoding.js";
import { identityFromBytes, IDENTITY_SIZE } from "./identity.js";
import { CryptoError, invalidEnvelope, unsupportedVersion, weakPassphrase, wrongPassphrase } from "./errors.js";

const VERSION = 1;
export const KIND_GENERATED = 1;
export const KIND_PASSPHRASE = 2;
const SALT_SIZE = 16;
const NONCE_SIZE = 24;
const HEADER_SIZE = 10 + SALT_SIZE; // the additional data
const BLOB_SIZE = HEADER_SIZE + NONCE_SIZE + IDENTITY_SIZE + 16;
const MIB = 1024 * 1024;
export const GENERATED_LIMITS = [3, 256 * MIB]; // MODERATE
export const PASSPHRASE_LIMITS = [4, 1024 * MIB]; // SENSITIVE
// The blob comes from the server: it must not make a phone spend minutes or gigabytes.
const MIN_OPSLIMIT = 1;
const MAX_OPSLIMIT = 16;
const MIN_MEMLIMIT = 8192;
const MAX_MEMLIMIT = 1024 * MIB;

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const SECRET_CHARS = 28; // 140 bits
const MIN_PASSPHRASE_CHARS = 16;
const MIN_PASSPHRASE_DISTINCT = 8;
const MIN_PASSPHRASE_CLASSES = 2;

/** A new recovery secret, 7 groups of 4 Crockford characters, shown once. */
export function generateRecoverySecret() {
  const bytes = sodium.randombytes_buf(18);
  let number = 0n;
  for (const b of bytes) number = (number << 8n) | BigInt(b);
  number >>= 4n; // 144 bits -> 140
  let chars = "";
  for (let i = 0; i < SECRET_CHARS; i++) {
    chars += CROCKFORD[Number((number >> BigInt(5 * (SECRET_CHARS - 1 - i))) & 31n)];
  }
  return (chars.match(/.{4}/g) ?? []).join("-");
}

/**
 * The canonical 28 characters of a generated secret, or null if it is not one.
 * @param {string} secret
 * @returns {string | null}
 */
export function normaliseRecoverySecret(secret) {
  const text = secret.replace(/[\s-]/gu, "").toUpperCase().replace(/I|L/g, "1").replace(/O/g, "0");
  if (text.length !== SECRET_CHARS || [...text].some((ch) => !CROCKFORD.includes(ch))) return null;
  return text;
}

/** @param {string} passphrase */
export function normalisePassphrase(passphrase) {
  return passphrase.normalize("NFC").trim();
}

/** @param {string} ch */
function charClass(ch) {
  if (/^\p{Lowercase}$/u.test(ch)) return "lower";
  if (/^\p{Uppercase}$/u.test(ch)) return "upper";
  if (/^\p{Nd}$/u.test(ch)) return "digit";
  return "other";
}

/**
 * Throws weak_passphrase naming the rule that failed; the rule of check_passphrase_strength.
 * Its data names the rule (`rule`, `minimum`), for the screen's own words (passphrase.js).
 * @param {string} passphrase
 */
export function checkPassphraseStrength(passphrase) {
  const chars = [...normalisePassphrase(passphrase)];
  if (chars.length < MIN_PASSPHRASE_CHARS) {
    throw weakPassphrase(`a passphrase needs at least ${MIN_PASSPHRASE_CHARS} characters`, { rule: "length", minimum: MIN_PASSPHRASE_CHARS });
  }
  if (new Set(chars).size < MIN_PASSPHRASE_DISTINCT) {
    throw weakPassphrase(`a passphrase needs at least ${MIN_PASSPHRASE_DISTINCT} different characters`, { rule: "distinct", minimum: MIN_PASSPHRASE_DISTINCT });
  }
  if (new Set(chars.map(charClass)).size < MIN_PASSPHRASE_CLASSES) {
    throw weakPassphrase("a passphrase needs two kinds of character (lowercase, uppercase, digits, others)", { rule: "classes", minimum: MIN_PASSPHRASE_CLASSES });
  }
}

/** @param {number} ops @param {number} mem */
function limitsOk(ops, mem) {
  return Number.isInteger(ops) && ops >= MIN_OPSLIMIT && ops <= MAX_OPSLIMIT
    && Number.isInteger(mem) && mem >= MIN_MEMLIMIT && mem <= MAX_MEMLIMIT;
}

/**
 * @param {string} material the normalised secret
 * @param {Uint8Array} salt
 * @param {number} ops
 * @param {number} mem
 */
function derive(material, salt, ops, mem) {
  return sodium.crypto_pwhash(32, utf8(material), salt, ops, mem, sodium.crypto_pwhash_ALG_ARGON2ID13);
}

function cancelled() {
  return new CryptoError("cancelled", "cancelled before the keys were secured");
}

/**
 * derive() in a module worker (../workers/argon2.js, the same vendored libsodium,
 * so the same bytes): the page stays responsive for the seconds Argon2id takes, and
 * `signal` aborting terminates the worker (rejects with code "cancelled"). Only
 * where a module Worker cannot be constructed does it run here, on the main thread.
 * @param {string} material
 * @param {Uint8Array} salt
 * @param {number} ops
 * @param {number} mem
 * @param {{signal?: AbortSignal | null}} [options]
 * @returns {Promise<Uint8Array>} the 32-byte key
 */
export function deriveOffThread(material, salt, ops, mem, { signal = null } = {}) {
  if (signal?.aborted) return Promise.reject(cancelled());
  let worker;
  try {
    worker = new Worker(new URL("../workers/argon2.js", import.meta.url), { type: "module", name: "argon2id" });
  } catch {
    return new Promise((resolve, reject) => {
      // Let the "this takes a few seconds" state paint before Argon2id takes the thread.
      setTimeout(() => {
        if (signal?.aborted) return reject(cancelled());
        try {
          resolve(derive(material, salt, ops, mem));
        } catch (error) {
          reject(error);
        }
      }, 30);
    });
  }
  return new Promise((resolve, reject) => {
    /** @type {<T>(settle: (value: T) => void, value: T) => void} */
    const finish = (settle, value) => {
      worker.terminate(); // also frees the worker's WebAssembly memory (up to 1 GiB)
      signal?.removeEventListener("abort", abort);
      settle(value);
    };
    const abort = () => finish(reject, cancelled());
    signal?.addEventListener("abort", abort, { once: true });
    worker.onmessage = ({ data }) => {
      if (data.ready) {
        const password = utf8(material);
        worker.postMessage({ password, salt: salt.slice(), ops, mem }, [password.buffer]);
      } else if (data.key) {
        finish(resolve, data.key);
      } else {
        finish(reject, new Error(`Argon2id failed in the worker: ${data.error}`));
      }
    };
    worker.onerror = (event) => {
      event.preventDefault?.();
      finish(reject, new Error(`the Argon2id worker did not run: ${event.message || "it could not be loaded"}`));
    };
    worker.onmessageerror = () => finish(reject, new Error("the Argon2id worker sent an unreadable message"));
  });
}

/**
 * @typedef {object} SealOptions
 * @property {boolean} [userChosen] a passphrase the user chose (checked for strength), not a generated secret
 * @property {number | null} [opslimit] Argon2id limits; the kind's defaults when null
 * @property {number | null} [memlimit]
 * @property {Uint8Array | null} [salt] fixed only by the known-answer vectors
 * @property {Uint8Array | null} [nonce]
 */

/**
 * @param {import("./identity.js").Identity} identity
 * @param {string} secret the generated recovery secret or the user's passphrase
 * @param {SealOptions} [options]
 */
function prepareSeal(identity, secret, { userChosen = false, opslimit = null, memlimit = null, salt = null, nonce = null } = {}) {
  /** @type {number} */
  let kind;
  /** @type {string | null} */
  let material;
  /** @type {number[]} */
  let defaults;
  if (userChosen) {
    checkPassphraseStrength(secret);
    [kind, material, defaults] = [KIND_PASSPHRASE, normalisePassphrase(secret), PASSPHRASE_LIMITS];
  } else {
    material = normaliseRecoverySecret(secret);
    if (material === null) throw wrongPassphrase("not a recovery secret: expected 28 Crockford characters");
    [kind, defaults] = [KIND_GENERATED, GENERATED_LIMITS];
  }
  const ops = opslimit ?? defaults[0];
  const mem = memlimit ?? defaults[1];
  if (!limitsOk(ops, mem)) throw new RangeError("Argon2id limits out of range");
  salt = salt ?? sodium.randombytes_buf(SALT_SIZE);
  nonce = nonce ?? sodium.randombytes_buf(NONCE_SIZE);
  const blob = new Uint8Array(BLOB_SIZE);
  const view = new DataView(blob.buffer);
  blob[0] = VERSION;
  blob[1] = kind;
  view.setUint32(2, ops);
  view.setUint32(6, mem);
  blob.set(salt, 10);
  return { identity, material, ops, mem, salt, nonce, blob };
}

/**
 * @param {ReturnType<typeof prepareSeal>} prepared
 * @param {Uint8Array} key Argon2id's output, wiped here
 */
function finishSeal({ identity, nonce, blob }, key) {
  const header = blob.slice(0, HEADER_SIZE);
  const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(identity.toBytes(), header, null, nonce, key);
  sodium.memzero(key);
  blob.set(nonce, HEADER_SIZE);
  blob.set(ciphertext, HEADER_SIZE + NONCE_SIZE);
  return blob;
}

/**
 * The backup blob, synchronously: Argon2id on the calling thread (the vectors' checks).
 * @param {import("./identity.js").Identity} identity
 * @param {string} secret
 * @param {SealOptions} [options]
 */
export function sealBackup(identity, secret, options = {}) {
  const prepared = prepareSeal(identity, secret, options);
  return finishSeal(prepared, derive(prepared.material, prepared.salt, prepared.ops, prepared.mem));
}

/**
 * The same bytes as sealBackup, with Argon2id in a worker; `signal` cancels.
 * @param {import("./identity.js").Identity} identity
 * @param {string} secret
 * @param {SealOptions & {signal?: AbortSignal | null}} [options]
 */
export async function sealBackupAsync(identity, secret, { signal = null, ...options } = {}) {
  const prepared = prepareSeal(identity, secret, options);
  const key = await deriveOffThread(prepared.material, prepared.salt, prepared.ops, prepared.mem, { signal });
  return finishSeal(prepared, key);
}

/** @param {unknown} blob */
export function backupKind(blob) {
  return parse(blob).kind;
}

/** @param {unknown} blob */
function parse(blob) {
  if (!(blob instanceof Uint8Array) || blob.length < 1) throw invalidEnvelope("backup: expected bytes");
  if (blob[0] !== VERSION) throw unsupportedVersion(`backup: version ${blob[0]} is not supported`);
  if (blob.length !== BLOB_SIZE) throw invalidEnvelope(`backup: expected ${BLOB_SIZE} bytes, got ${blob.length}`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.length);
  const kind = blob[1];
  if (kind !== KIND_GENERATED && kind !== KIND_PASSPHRASE) throw invalidEnvelope(`backup: unknown secret kind ${kind}`);
  const ops = view.getUint32(2);
  const mem = view.getUint32(6);
  if (!limitsOk(ops, mem)) throw invalidEnvelope("backup: Argon2id limits out of range");
  return { kind, ops, mem, salt: blob.slice(10, HEADER_SIZE), bytes: blob };
}

/**
 * @param {unknown} blob
 * @param {string} secret
 */
function prepareOpen(blob, secret) {
  const { kind, ops, mem, salt, bytes } = parse(blob);
  let material;
  if (kind === KIND_GENERATED) {
    material = normaliseRecoverySecret(secret);
    if (material === null) throw wrongPassphrase("not a recovery secret: expected 28 Crockford characters");
  } else {
    material = normalisePassphrase(secret);
  }
  return { blob: bytes, material, ops, mem, salt };
}

/**
 * @param {{blob: Uint8Array}} prepared
 * @param {Uint8Array} key Argon2id's output, wiped here
 */
function finishOpen({ blob }, key) {
  let plaintext;
  try {
    plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null, blob.slice(HEADER_SIZE + NONCE_SIZE), blob.slice(0, HEADER_SIZE), blob.slice(HEADER_SIZE, HEADER_SIZE + NONCE_SIZE), key);
  } catch {
    throw wrongPassphrase("the backup does not open with this secret");
  } finally {
    sodium.memzero(key);
  }
  return identityFromBytes(plaintext);
}

/**
 * The identity in the blob, synchronously: Argon2id on the calling thread.
 * @param {unknown} blob
 * @param {string} secret
 */
export function openBackup(blob, secret) {
  const prepared = prepareOpen(blob, secret);
  return finishOpen(prepared, derive(prepared.material, prepared.salt, prepared.ops, prepared.mem));
}

/**
 * openBackup with Argon2id in a worker; `signal` cancels.
 * @param {unknown} blob
 * @param {string} secret
 * @param {{signal?: AbortSignal | null}} [options]
 */
export async function openBackupAsync(blob, secret, { signal = null } = {}) {
  const prepared = prepareOpen(blob, secret);
  const key = await deriveOffThread(prepared.material, prepared.salt, prepared.ops, prepared.mem, { signal });
  return finishOpen(prepared, key);
}
