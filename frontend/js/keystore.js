// @ts-check
// Private keys at rest in this browser: IndexedDB, one database wiped whole
// at sign-out. Institution pins live in another database, which sign-out
// keeps: they are public and re-confirming them each time would train
// people to click through.

const KEYS_DB = "rounds-keys";
const PINS_DB = "rounds-pins";

/**
 * The identity at rest: its 64 private bytes, and whether the server holds its backup.
 * @typedef {{user: number, secret: Uint8Array, fingerprint: string, backupStored: boolean}} StoredIdentity
 */

/**
 * @param {string} name
 * @param {string} store
 * @param {string} keyPath
 * @returns {Promise<IDBDatabase>}
 */
function open(name, store, keyPath) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(name, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(store, { keyPath });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * @param {string} name
 * @param {string} store
 * @param {string} keyPath
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore) => IDBRequest} action
 * @returns {Promise<any>} the request's result once the transaction committed
 */
async function run(name, store, keyPath, mode, action) {
  const db = await open(name, store, keyPath);
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(store, mode);
      const request = action(tx.objectStore(store));
      tx.oncomplete = () => resolve(request?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/**
 * {user, secret: Uint8Array(64), fingerprint, backupStored} or undefined.
 * @param {number} user
 * @returns {Promise<StoredIdentity | undefined>}
 */
export function loadIdentity(user) {
  return run(KEYS_DB, "identity", "user", "readonly", (s) => s.get(user));
}

/** @param {StoredIdentity} record */
export function saveIdentity(record) {
  return run(KEYS_DB, "identity", "user", "readwrite", (s) => s.put(record));
}

/** @returns {Promise<void>} */
export function wipeKeys() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(KEYS_DB);
    request.onsuccess = () => resolve();
    request.onblocked = () => resolve();
    request.onerror = () => reject(request.error);
  });
}

/** @param {string} kind @returns {Promise<string | null>} */
export function loadPin(kind) {
  return run(PINS_DB, "pins", "kind", "readonly", (s) => s.get(kind)).then((r) => r?.fingerprint ?? null);
}

/** @param {string} kind @param {string} fingerprint */
export function savePin(kind, fingerprint) {
  return run(PINS_DB, "pins", "kind", "readwrite", (s) => s.put({ kind, fingerprint }));
}
