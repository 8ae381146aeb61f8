// @ts-check
// What this browser remembers between sessions, so a server cannot make it
// forget (client/trust.py; docs/crypto.md §9, R1, R4, R6). IndexedDB
// database "rounds-trust", every record keyed by the signed-in user's id:
//
// - heads: per department, the highest chain head this browser verified; a
//   chain that does not extend it is refused (membership_rollback, _fork);
// - versions: per department, the highest key version verified; a server
//   naming a lower one as current is refused (key_version_rollback);
// - seen: per (sender, client_msg_id), the hash of the envelope opened or
//   sent under it and the message id it first came as; the same envelope
//   under another message id is a duplicate, another envelope a replay.
//
// Nothing here is secret (no key, no plaintext, no patient), so sign-out
// keeps it, unlike the keys (keystore.js): it is what makes a rollback, a
// replay or a duplicate visible across sign-outs, reloads and tabs.
// IndexedDB's transactions make each read-then-write below atomic, also
// between two tabs of the same user.
import sodium from "../crypto/sodium.js";
import { canonicalJson, toHex } from "../crypto.js";

const DB = "rounds-trust";
const VERSION = 1;

// One connection for the page (a history page opens fifty envelopes), given up
// if another tab upgrades the database.
/** @type {Promise<IDBDatabase> | null} */
let connection = null;

/** @returns {Promise<IDBDatabase>} */
function open() {
  connection ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore("heads", { keyPath: ["user", "department"] });
      db.createObjectStore("versions", { keyPath: ["user", "department"] });
      db.createObjectStore("seen", { keyPath: ["user", "sender", "client_msg_id"] });
    };
    request.onsuccess = () => {
      const db = request.result;
      db.onversionchange = () => {
        db.close();
        connection = null;
      };
      resolve(db);
    };
    request.onerror = () => {
      connection = null;
      reject(request.error);
    };
  });
  return connection;
}

/**
 * Run `step(store, done)` in one transaction of `name`; resolves with what
 * `done(value)` was given once the transaction committed.
 * @template T
 * @param {string} name
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore, done: (value: T) => void) => void} step
 * @returns {Promise<T>}
 */
async function transact(name, mode, step) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(name, mode);
    /** @type {T} */
    let result;
    step(tx.objectStore(name), (value) => (result = value));
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/**
 * SHA-256 hex of the envelope as sorted, compact JSON (client/trust.py envelope_hash).
 * @param {unknown} envelope
 */
export function envelopeHash(envelope) {
  // canonicalJson is Python's json.dumps(sort_keys=True, separators=(",", ":"),
  // ensure_ascii=False) for what a parsed envelope holds (ASCII keys, strings, integers).
  return toHex(sodium.crypto_hash_sha256(canonicalJson(envelope)));
}

/** @typedef {{envelopeHash: string, messageId: number | null}} Seen */

/** The remembered heads, versions and envelopes of one user of this server. */
export class TrustStore {
  /** @param {number} user */
  constructor(user) {
    this.user = user;
  }

  /**
   * "Not my computer": drop everything remembered for this user here (the rollback
   * checks then start again from what the next sign-in verifies).
   * @returns {Promise<void>}
   */
  async forget() {
    // Every key starts with the user: [user] sorts before them, [user, []] after.
    const mine = IDBKeyRange.bound([this.user], [this.user, []]);
    for (const name of ["heads", "versions", "seen"]) await transact(name, "readwrite", (store) => store.delete(mine));
  }

  // --- chain heads --------------------------------------------------------------

  /**
   * {seq, hash} of the highest head verified, or null.
   * @param {number} department
   * @returns {Promise<{seq: number, hash: string} | null>}
   */
  head(department) {
    return transact("heads", "readonly", (store, done) => {
      const request = store.get([this.user, department]);
      request.onsuccess = () => {
        const row = request.result;
        done(row ? { seq: row.seq, hash: row.hash } : null);
      };
    });
  }

  /**
   * Remember `head` if it is further than the one held (the caller checked it extends).
   * @param {number} department
   * @param {{seq: number, hash: string}} head
   * @returns {Promise<void>}
   */
  keepHead(department, head) {
    return transact("heads", "readwrite", (store) => {
      const request = store.get([this.user, department]);
      request.onsuccess = () => {
        const row = request.result;
        if (!row || head.seq > row.seq) store.put({ user: this.user, department, seq: head.seq, hash: head.hash });
      };
    });
  }

  // --- key versions -------------------------------------------------------------

  /**
   * The highest key version verified in `department`, 0 if none.
   * @param {number} department
   * @returns {Promise<number>}
   */
  highestVersion(department) {
    return transact("versions", "readonly", (store, done) => {
      const request = store.get([this.user, department]);
      request.onsuccess = () => done(request.result?.version ?? 0);
    });
  }

  /**
   * @param {number} department
   * @param {number} version
   * @returns {Promise<void>}
   */
  keepVersion(department, version) {
    return transact("versions", "readwrite", (store) => {
      const request = store.get([this.user, department]);
      request.onsuccess = () => {
        const row = request.result;
        if (!row || version > row.version) store.put({ user: this.user, department, version });
      };
    });
  }

  // --- envelopes ----------------------------------------------------------------

  /**
   * {envelopeHash, messageId} remembered under (sender, client_msg_id), or null.
   * @param {number} sender
   * @param {string} clientMsgId
   * @returns {Promise<Seen | null>}
   */
  seen(sender, clientMsgId) {
    return transact("seen", "readonly", (store, done) => {
      const request = store.get([this.user, sender, clientMsgId]);
      request.onsuccess = () => {
        const row = request.result;
        done(row ? { envelopeHash: row.envelope_hash, messageId: row.message_id } : null);
      };
    });
  }

  /**
   * Keep the first envelope seen under this id, and the first message id it came
   * as (filled in later if it was sent before its id was known); resolve to what
   * is now remembered.
   * @param {number} sender
   * @param {string} clientMsgId
   * @param {string} digest envelopeHash of the envelope
   * @param {number | null | undefined} messageId
   * @returns {Promise<Seen>}
   */
  remember(sender, clientMsgId, digest, messageId) {
    return transact("seen", "readwrite", (store, done) => {
      const key = [this.user, sender, clientMsgId];
      const request = store.get(key);
      request.onsuccess = () => {
        let row = request.result;
        if (!row) {
          row = { user: this.user, sender, client_msg_id: clientMsgId, envelope_hash: digest, message_id: messageId ?? null };
          store.put(row);
        } else if (row.message_id === null && row.envelope_hash === digest && messageId != null) {
          row = { ...row, message_id: messageId };
          store.put(row);
        }
        done({ envelopeHash: row.envelope_hash, messageId: row.message_id });
      };
    });
  }
}
