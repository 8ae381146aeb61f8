// @ts-check
// A clinician's identity kept on a computer they signed out of, so that signing
// in there again asks for a short PIN, or the passkey made then (passkey.js), instead
// of the recovery code (docs/browser.md,
// "Signing in again on a shared computer"; the cost against a thief in
// docs/threat-model.md, "A PIN on a shared computer").
//
// Two layers, so that neither the PIN alone nor a copy of the database read
// through the page opens anything:
// - inside, the 64 identity bytes under XChaCha20-Poly1305 with a key from
//   Argon2id(PIN, a random salt of this copy) — the recovery code's worker and limits —
//   or, for a copy locked with a passkey, HKDF of its PRF output for a random salt of this copy;
// - outside, that under AES-GCM with a WebCrypto key made here with
//   extractable: false and stored beside it: script can use it on this origin
//   but cannot read it out. (Chromium still writes its bytes in the profile's
//   IndexedDB files: a copy of the profile directory has it. The threat model says so.)
// Both layers authenticate the user id and the fingerprint.
//
// Five wrong PINs erase the copy (five passkey answers that do not open it, too; a
// cancelled passkey ceremony is no try: it comes before the count). The count is written before each try, in the
// same transaction that reads the copy, so neither a reload in the middle of a
// try nor two tabs get more tries; it binds only this page, never someone who
// runs their own code against the profile. The PIN and every key derived from it
// stay in this page: nothing here talks to the server, nothing is logged.
import sodium from "./crypto/sodium.js";
import { utf8 } from "./crypto/encoding.js";
import { deriveOffThread, GENERATED_LIMITS } from "./crypto/backup.js";
import { identityFromBytes } from "./crypto/identity.js";
import { E2EError } from "./e2e/errors.js";
import { t, tn } from "./i18n.js";
import { evaluate, forgetPasskey, passkeyKey } from "./passkey.js";

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
 * (the fingerprint is public, published in the key directory). `lock` is absent in
 * copies kept before passkeys (a PIN); a passkey's copy has its credential id, its
 * PRF salt in `salt` and no Argon2id limits (ops and mem 0).
 * @typedef {{user: number, version: number, fingerprint: string, salt: Uint8Array, ops: number,
 *   mem: number, iv: Uint8Array, sealed: ArrayBuffer, deviceKey: CryptoKey, failures: number,
 *   lock?: "pin" | "passkey", credential?: Uint8Array}} Copy
 */
/** @typedef {Pick<Copy, "user" | "fingerprint" | "ops" | "mem" | "lock" | "credential">} Header */

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

/** The additional data of both layers (a PIN copy's as before passkeys). @param {Header} copy */
function header({ user, fingerprint, ops, mem, lock, credential }) {
  const passkey = lock === "passkey" && credential ? `/passkey/${sodium.to_hex(credential)}` : "";
  return utf8(`rounds-device-copy/${VERSION}/${user}/${fingerprint}/${ops}/${mem}${passkey}`);
}

/** A PIN is six digits, not one repeated nor a run (123456, 987654). @param {string} pin */
export function checkPin(pin) {
  if (!new RegExp(`^[0-9]{${PIN_DIGITS}}$`).test(pin)) throw new E2EError("weak_pin", t("A PIN is {digits} digits.", { digits: PIN_DIGITS }));
  const steps = new Set([...pin].slice(1).map((d, i) => (Number(d) - Number(pin[i]) + 10) % 10));
  if (steps.size === 1 && [0, 1, 9].includes([...steps][0])) {
    throw new E2EError("weak_pin", t("This PIN is too easy to guess: not one digit repeated, nor a run like 123456."));
  }
}

/**
 * The user's kept copy's fingerprint, or null: what sign-in and sign-out ask.
 * @param {number} user
 * @returns {Promise<string | null>}
 */
export async function keptFingerprint(user) {
  return (await kept(user))?.fingerprint ?? null;
}

/**
 * What locks the user's kept copy, "pin" or "passkey", or null: what the unlock form shows.
 * @param {number} user
 * @returns {Promise<"pin" | "passkey" | null>}
 */
export async function keptLock(user) {
  const copy = await kept(user);
  return copy ? (copy.lock ?? "pin") : null;
}

/** @param {number} user @returns {Promise<Copy | null>} */
async function kept(user) {
  await sealing; // signing in again at once, in this page: the copy being sealed counts
  if (!(await exists())) return null;
  /** @type {Copy | undefined} */
  const copy = await transact("readonly", (store, done) => (store.get(user).onsuccess = (e) => done(/** @type {IDBRequest} */ (e.target).result)));
  return copy && copy.version === VERSION ? copy : null;
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
  return sealed(seal(user, fingerprint, secret, { pin }));
}

/**
 * Keep `secret` (wiped here) on this computer under a passkey made for it (passkey.js
 * register(): its PRF output is wiped here too).
 * @param {number} user
 * @param {string} fingerprint
 * @param {Uint8Array} secret
 * @param {import("./passkey.js").Passkey} passkey
 * @returns {Promise<void>}
 */
export function keepWithPasskey(user, fingerprint, secret, passkey) {
  return sealed(seal(user, fingerprint, secret, { passkey }));
}

/** @param {Promise<void>} done */
function sealed(done) {
  sealing = done.catch(() => {});
  return done;
}

/**
 * @param {number} user @param {string} fingerprint @param {Uint8Array} secret
 * @param {{pin: string} | {passkey: import("./passkey.js").Passkey}} lock
 */
async function seal(user, fingerprint, secret, lock) {
  /** @type {Header & {salt: Uint8Array}} */
  let fields;
  let key;
  if ("pin" in lock) {
    checkPin(lock.pin);
    const [ops, mem] = GENERATED_LIMITS;
    fields = { user, fingerprint, ops, mem, salt: sodium.randombytes_buf(SALT_SIZE) };
    key = await deriveOffThread(lock.pin, fields.salt, ops, mem);
  } else {
    const { credential, salt, output } = lock.passkey;
    fields = { user, fingerprint, ops: 0, mem: 0, salt, lock: "passkey", credential };
    key = await passkeyKey(output, user, fingerprint);
  }
  const ad = header(fields);
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
  const copy = { ...fields, version: VERSION, iv, sealed, deviceKey, failures: 0 };
  await transact("readwrite", (store) => store.put(copy));
}

/**
 * Open the copy with `pin`, or with its passkey when a passkey locks it (`pin` is then
 * not used: the authenticator asks the clinician): the identity, or a refusal —
 * wrong_pin, wrong_passkey (data.left tries), pin_wiped (that was the last try, or the
 * copy cannot be read: it is erased), passkey_failed, passkey_no_prf (no try counted,
 * the copy stays), no_copy.
 * @param {number} user
 * @param {string} pin
 * @param {{signal?: AbortSignal | null}} [options] cancels Argon2id; the try still counts
 */
export async function unlock(user, pin, { signal = null } = {}) {
  if (!(await exists())) throw new E2EError("no_copy", t("This computer keeps no copy of your keys."));
  const locked = await kept(user);
  // The passkey answers before the count: a cancelled ceremony (the reader not found, the
  // wrong person at it) is no guess, and the PRF output is no secret an attacker can try.
  const output = locked?.lock === "passkey" && locked.credential ? await evaluate(new Uint8Array(locked.credential), new Uint8Array(locked.salt)) : null;
  /** @type {Copy | undefined} */
  const copy = await transact("readwrite", (store, done) => {
    store.get(user).onsuccess = (e) => {
      const found = /** @type {Copy | undefined} */ (/** @type {IDBRequest} */ (e.target).result);
      if (found && found.version === VERSION && found.failures < PIN_TRIES) store.put({ ...found, failures: found.failures + 1 });
      else if (found) store.delete(user);
      done(found);
    };
  });
  if (!copy) throw new E2EError("no_copy", t("This computer keeps no copy of your keys."));
  if (copy.version !== VERSION || copy.failures >= PIN_TRIES) throw wiped(copy);
  const ad = header(copy);
  let inner;
  try {
    inner = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: new Uint8Array(copy.iv), additionalData: ad }, copy.deviceKey, copy.sealed));
  } catch {
    await forget(user); // not this computer's, or altered: nothing a PIN could open
    throw wiped(copy);
  }
  const key = output ? await passkeyKey(output, user, copy.fingerprint) : await deriveOffThread(pin, copy.salt, copy.ops, copy.mem, { signal });
  let secret;
  try {
    secret = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, inner.slice(NONCE_SIZE), ad, inner.slice(0, NONCE_SIZE), key);
  } catch {
    const left = PIN_TRIES - copy.failures - 1;
    if (left > 0 && output) {
      throw new E2EError("wrong_passkey", tn(left, "This passkey did not open the copy of your keys: {count} try left before it is erased.",
        "This passkey did not open the copy of your keys: {count} tries left before it is erased."), { left });
    }
    if (left > 0) {
      throw new E2EError("wrong_pin", tn(left, "Wrong PIN: {count} try left before the copy of your keys on this computer is erased.",
        "Wrong PIN: {count} tries left before the copy of your keys on this computer is erased."), { left });
    }
    await forget(user);
    throw wiped(copy);
  } finally {
    sodium.memzero(key);
  }
  const identity = identityFromBytes(secret);
  sodium.memzero(secret);
  if (identity.fingerprint !== copy.fingerprint) {
    await forget(user);
    throw wiped(copy);
  }
  await transact("readwrite", (store) => store.put({ ...copy, failures: 0 }));
  return identity;
}

/** @param {Copy} copy */
function wiped(copy) {
  if (copy.lock === "passkey") {
    return new E2EError("pin_wiped", t("The copy of your keys on this computer could not be opened with your passkey: it was erased. Enter your recovery code."), { lock: "passkey" });
  }
  return new E2EError("pin_wiped", t("Too many wrong PINs: the copy of your keys on this computer was erased. Enter your recovery code."));
}

/**
 * Erase the user's copy ("Not my computer", a stale copy); the database goes with the last one.
 * A passkey stays in the platform's authenticator: the browser is only told it is unused.
 * @param {number} user
 */
export async function forget(user) {
  if (!(await exists())) return;
  /** @type {[number, Copy | undefined]} */
  const [left, copy] = await transact("readwrite", (store, done) => {
    store.get(user).onsuccess = (e) => {
      const found = /** @type {IDBRequest} */ (e.target).result;
      store.delete(user);
      store.count().onsuccess = (c) => done([/** @type {IDBRequest} */ (c.target).result, found]);
    };
  });
  if (copy?.lock === "passkey" && copy.credential) forgetPasskey(copy.credential);
  if (left === 0) {
    await new Promise((resolve) => {
      const request = indexedDB.deleteDatabase(DB);
      request.onsuccess = request.onerror = request.onblocked = () => resolve(undefined);
    });
  }
}
