// @ts-check
// A clinician's identity kept on a computer they signed out of, so that signing
// in there again asks for a short PIN instead of the recovery code (docs/browser.md,
// "Signing in again on a shared computer"; the cost against a thief in
// docs/threat-model.md, "A PIN on a shared computer").
//
// Two layers, so that neither the PIN alone nor a copy of the database read
// through the page opens anything:
// - inside, the 64 identity bytes under XChaCha20-Poly1305 with a key from
//   Argon2id(PIN, a random salt of this copy) — the recovery code's worker and limits;
// - outside, that under AES-GCM with a WebCrypto key made here with
//   extractable: false and stored beside it: script can use it on this origin
//   but cannot read it out. (Chromium still writes its bytes in the profile's
//   IndexedDB files: a copy of the profile directory has it. The threat model says so.)
// Both layers authenticate the user id and the fingerprint.
//
// Five wrong PINs erase the copy. The count is written before each try, in the
// same transaction that reads the copy, so neither a reload in the middle of a
// try nor two tabs get more tries; it binds only this page, never someone who
// runs their own code against the profile. The PIN and every key derived from it
// stay in this page: nothing here talks to the server, nothing is logged.
import sodium from "./crypto/sodium.js";
import { utf8 } from "./crypto/encoding.js";
import { deriveOffThread, GENERATED_LIMITS } from "./crypto/backup.js";
import { identityFromBytes } from "./crypto/identity.js";
import { E2EError } from "./e2e/errors.js";

const DB = "rounds-device";
const STORE = "copies";
const VERSION = 1;
export const PIN_DIGITS = 6;
export const PIN_TRIES = 5;
const SALT_SIZE = 16;
const NONCE_SIZE = 24;
const IV_SIZE = 12;

/**
 * A kept identity, keyed by user: nothing in it is readable without the device key
 * (the fingerprint is public, published in the key directory).
 * @typedef {{user: number, version: number, fingerprint: string, salt: Uint8Array, ops: number,
 *   mem: number, iv: Uint8Array, sealed: ArrayBuffer, deviceKey: CryptoKey, failures: number}} Copy
 */

/**
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore, done: (value: any) => void) => void} step
 * @returns {Promise<any>} what `done` was given, once the transaction committed
 */
function transact(mode, step) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, VERSION);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "user" });
    request.onerror = () => reject(request.error);
    request.onsuccess = () => {
      const db = request.result;
      const tx = db.transaction(STORE, mode);
      /** @type {any} */
      let result;
      step(tx.objectStore(STORE), (value) => (result = value));
      tx.oncomplete = () => { db.close(); resolve(result); };
      tx.onerror = () => { db.close(); reject(tx.error); };
      tx.onabort = () => { db.close(); reject(tx.error); };
    };
  });
}

/** The additional data of both layers. @param {Copy | {user: number, fingerprint: string, ops: number, mem: number}} copy */
function header({ user, fingerprint, ops, mem }) {
  return utf8(`rounds-device-copy/${VERSION}/${user}/${fingerprint}/${ops}/${mem}`);
}

/** A PIN is six digits, not one repeated nor a run (123456, 987654). @param {string} pin */
export function checkPin(pin) {
  if (!new RegExp(`^[0-9]{${PIN_DIGITS}}$`).test(pin)) throw new E2EError("weak_pin", `A PIN is ${PIN_DIGITS} digits.`);
  const steps = new Set([...pin].slice(1).map((d, i) => (Number(d) - Number(pin[i]) + 10) % 10));
  if (steps.size === 1 && [0, 1, 9].includes([...steps][0])) {
    throw new E2EError("weak_pin", "This PIN is too easy to guess: not one digit repeated, nor a run like 123456.");
  }
}

/**
 * The user's kept copy's fingerprint, or null: what sign-in and sign-out ask.
 * @param {number} user
 * @returns {Promise<string | null>}
 */
export async function keptFingerprint(user) {
  await sealing; // signing in again at once, in this page: the copy being sealed counts
  if (!(await exists())) return null;
  /** @type {Copy | undefined} */
  const copy = await transact("readonly", (store, done) => (store.get(user).onsuccess = (e) => done(/** @type {IDBRequest} */ (e.target).result)));
  return copy && copy.version === VERSION ? copy.fingerprint : null;
}

/** Whether the database exists: reading it must not create it for someone who keeps nothing. */
async function exists() {
  return (await indexedDB.databases()).some((d) => d.name === DB);
}

/** The copy being sealed in this page, if any (never rejects). */
let sealing = Promise.resolve();

/**
 * Keep `secret` (the identity's 64 bytes, wiped here) on this computer under `pin`.
 * @param {number} user
 * @param {string} fingerprint
 * @param {Uint8Array} secret
 * @param {string} pin checked by checkPin
 * @returns {Promise<void>}
 */
export function keep(user, fingerprint, secret, pin) {
  const done = seal(user, fingerprint, secret, pin);
  sealing = done.catch(() => {});
  return done;
}

/** @param {number} user @param {string} fingerprint @param {Uint8Array} secret @param {string} pin */
async function seal(user, fingerprint, secret, pin) {
  checkPin(pin);
  const [ops, mem] = GENERATED_LIMITS;
  const salt = sodium.randombytes_buf(SALT_SIZE);
  const ad = header({ user, fingerprint, ops, mem });
  const key = await deriveOffThread(pin, salt, ops, mem);
  const nonce = sodium.randombytes_buf(NONCE_SIZE);
  const inner = new Uint8Array(NONCE_SIZE + secret.length + 16);
  inner.set(nonce);
  inner.set(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(secret, ad, null, nonce, key), NONCE_SIZE);
  sodium.memzero(key);
  sodium.memzero(secret);
  const deviceKey = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(IV_SIZE));
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: ad }, deviceKey, inner);
  /** @type {Copy} */
  const copy = { user, version: VERSION, fingerprint, salt, ops, mem, iv, sealed, deviceKey, failures: 0 };
  await transact("readwrite", (store) => store.put(copy));
}

/**
 * Open the copy with `pin`: the identity, or a refusal — wrong_pin (data.left tries),
 * pin_wiped (that was the last try, or the copy cannot be read: it is erased), no_copy.
 * @param {number} user
 * @param {string} pin
 * @param {{signal?: AbortSignal | null}} [options] cancels Argon2id; the try still counts
 */
export async function unlock(user, pin, { signal = null } = {}) {
  if (!(await exists())) throw new E2EError("no_copy", "This computer keeps no copy of your keys.");
  /** @type {Copy | undefined} */
  const copy = await transact("readwrite", (store, done) => {
    store.get(user).onsuccess = (e) => {
      const found = /** @type {Copy | undefined} */ (/** @type {IDBRequest} */ (e.target).result);
      if (found && found.version === VERSION && found.failures < PIN_TRIES) store.put({ ...found, failures: found.failures + 1 });
      else if (found) store.delete(user);
      done(found);
    };
  });
  if (!copy) throw new E2EError("no_copy", "This computer keeps no copy of your keys.");
  if (copy.version !== VERSION || copy.failures >= PIN_TRIES) throw wiped();
  const ad = header(copy);
  let inner;
  try {
    inner = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: new Uint8Array(copy.iv), additionalData: ad }, copy.deviceKey, copy.sealed));
  } catch {
    await forget(user); // not this computer's, or altered: nothing a PIN could open
    throw wiped();
  }
  const key = await deriveOffThread(pin, copy.salt, copy.ops, copy.mem, { signal });
  let secret;
  try {
    secret = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, inner.slice(NONCE_SIZE), ad, inner.slice(0, NONCE_SIZE), key);
  } catch {
    const left = PIN_TRIES - copy.failures - 1;
    if (left > 0) throw new E2EError("wrong_pin", `Wrong PIN: ${left} ${left === 1 ? "try" : "tries"} left before the copy of your keys on this computer is erased.`, { left });
    await forget(user);
    throw wiped();
  } finally {
    sodium.memzero(key);
  }
  const identity = identityFromBytes(secret);
  sodium.memzero(secret);
  if (identity.fingerprint !== copy.fingerprint) {
    await forget(user);
    throw wiped();
  }
  await transact("readwrite", (store) => store.put({ ...copy, failures: 0 }));
  return identity;
}

function wiped() {
  return new E2EError("pin_wiped", "Too many wrong PINs: the copy of your keys on this computer was erased. Enter your recovery code.");
}

/**
 * Erase the user's copy ("Not my computer", a stale copy); the database goes with the last one.
 * @param {number} user
 */
export async function forget(user) {
  if (!(await exists())) return;
  const left = await transact("readwrite", (store, done) => {
    store.delete(user);
    store.count().onsuccess = (e) => done(/** @type {IDBRequest} */ (e.target).result);
  });
  if (left === 0) {
    await new Promise((resolve) => {
      const request = indexedDB.deleteDatabase(DB);
      request.onsuccess = request.onerror = request.onblocked = () => resolve(undefined);
    });
  }
}
