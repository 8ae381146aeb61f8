// @ts-check
// The user's identity in this browser (client/identity.py): created once,
// published, backed up under a recovery secret, recovered on the next device.
//
// The private identity never leaves the browser unsealed: the server keeps
// a backup sealed under a generated recovery code (140 bits, the default) or
// a passphrase the user chose that passes passphrase.js, so a new device
// recovers the same keys instead of showing "cannot be read"
// (docs/crypto.md §4). Argon2id runs in a worker (crypto/backup.js).
import * as c from "../crypto.js";
import { ApiError, get, put } from "../api.js";
import { loadIdentity, saveIdentity } from "../keystore.js";
import * as device from "../devicecopy.js";
import { checkPassphrase } from "../passphrase.js";
import { t } from "../i18n.js";
import { codeOf, E2EError } from "./errors.js";

/** @import { E2E } from "./index.js" */
/** @import { Identity as Keypair } from "../crypto.js" */

export class Identity {
  /** @param {E2E} e2e */
  constructor(e2e) {
    this.e2e = e2e;
    /** @type {"absent" | "replaced" | "pin_wiped"} why the recovery code is needed (state()) */
    this.recoverWhy = "absent";
  }

  get keys() {
    return this.e2e.keys;
  }

  /** This browser's key pair; keys_not_set_up before set-up or recovery. */
  keypair() {
    if (!this.keys.identity) throw new E2EError("keys_not_set_up", "This browser has no keys yet: set them up first.");
    return this.keys.identity;
  }

  get fingerprint() {
    return this.keys.identity?.fingerprint ?? null;
  }

  /**
   * A user's published identity (checked against its fingerprint), or null.
   * What the key directory says: shown to compare before signing, never trusted.
   */
  /** @param {number} user */
  async published(user) {
    try {
      const data = await get(`/api/keys/identity/${user}`);
      return c.checkedPublic(data.public, data.fingerprint, `identity of ${user}`);
    } catch (error) {
      if (error instanceof ApiError && error.code === "not_found") return null;
      throw error;
    }
  }

  /** What this browser must do: "ready", "create" (no key anywhere), "backup" (published, backup
   * not stored), "unlock" (kept on this computer under a PIN: devicecopy.js) or "recover" (the
   * recovery code; `recoverWhy` says why, for the screen: only "replaced" means the keys are
   * known to come from another device). */
  async state() {
    const me = this.e2e.me;
    const published = await this.published(me);
    const local = await loadIdentity(me);
    if (local) {
      const identity = c.identityFromBytes(local.secret);
      if (published && identity.fingerprint !== published.fingerprint) return this.recoverBecause("replaced");
      this.keys.identity = identity;
      if (!published) return "create"; // generated here, publication did not finish
      return local.backupStored ? "ready" : "backup";
    }
    if (!published) return "create";
    const kept = await device.keptFingerprint(me).catch(() => null);
    if (kept === published.fingerprint) return "unlock";
    if (kept !== null) {
      await device.forget(me); // a key replaced since: the copy opens nothing useful
      return this.recoverBecause("replaced");
    }
    return this.recoverBecause("absent");
  }

  /** @param {"absent" | "replaced" | "pin_wiped"} why */
  recoverBecause(why) {
    this.recoverWhy = why;
    return "recover";
  }

  /**
   * Open the copy kept on this computer with the user's PIN; refusals as devicecopy.js
   * unlock. A copy that is not the published key is erased: the recovery code then.
   * @param {string} pin
   * @param {{signal?: AbortSignal | null}} [options]
   */
  async unlock(pin, { signal = null } = {}) {
    const me = this.e2e.me;
    const identity = await device.unlock(me, pin, { signal });
    const published = await this.published(me);
    if (!published || identity.fingerprint !== published.fingerprint) {
      await device.forget(me);
      throw new E2EError("pin_wiped", t("The copy of your keys on this computer is not your current key: it was erased. Enter your recovery code."));
    }
    this.keys.identity = identity;
    await this.save(identity, true);
  }

  /** Whether this computer keeps a copy of the current key under a PIN. */
  async kept() {
    const fingerprint = this.fingerprint;
    return fingerprint !== null && (await device.keptFingerprint(this.e2e.me).catch(() => null)) === fingerprint;
  }

  /** The user's login and name: words a passphrase must not lean on. */
  userWords() {
    const user = this.e2e.user;
    return [user.username, user.display_name].filter(/** @returns {w is string} */ (w) => Boolean(w));
  }

  /**
   * First sign-in: generate (or reuse the unfinished) identity, publish it, seal
   * the backup. With `passphrase` the user chose one (checked by passphrase.js
   * first, SENSITIVE limits); otherwise the generated code is returned to show once.
   * @param {{passphrase?: string | null, signal?: AbortSignal | null}} [options]
   */
  async create({ passphrase = null, signal = null } = {}) {
    if (passphrase !== null) await checkPassphrase(passphrase, this.userWords());
    const identity = this.keys.identity ?? c.generateIdentity();
    // Kept before publishing, so that a retry publishes the same key.
    await this.save(identity, false);
    this.keys.identity = identity;
    if (!(await this.published(this.e2e.me))) {
      try {
        await put("/api/keys/identity", { public: c.publicToDict(identity.public) });
      } catch (error) {
        if (codeOf(error) === "conflict") {
          throw new E2EError("recovery_needed", "Your keys already exist on another device: enter your recovery code.");
        }
        throw error;
      }
    }
    return this.storeBackup(passphrase, { signal });
  }

  /**
   * Seal and store the backup; `signal` cancels Argon2id before anything is stored.
   * @param {string | null} [passphrase] the user's; null: a generated recovery code, returned
   * @param {{signal?: AbortSignal | null}} [options]
   */
  async storeBackup(passphrase = null, { signal = null } = {}) {
    const identity = this.keypair();
    const secret = passphrase ?? c.generateRecoverySecret();
    const blob = await c.sealBackupAsync(identity, secret, { userChosen: passphrase !== null, signal });
    await put("/api/keys/backup", { blob: c.b64encode(blob) });
    await this.save(identity, true);
    return passphrase === null ? secret : null;
  }

  /**
   * A new browser: open the server's backup with the recovery code or passphrase.
   * @param {string} secret
   * @param {{signal?: AbortSignal | null}} [options]
   */
  async recover(secret, { signal = null } = {}) {
    const published = await this.published(this.e2e.me);
    let data;
    try {
      data = await get("/api/keys/backup");
    } catch (error) {
      if (codeOf(error) === "not_found") throw new E2EError("backup_missing", "The server keeps no backup of your keys.");
      throw error;
    }
    const identity = await c.openBackupAsync(c.b64decode(data.blob, { field: "blob" }), secret, { signal });
    if (!published || identity.fingerprint !== published.fingerprint) {
      throw new E2EError("invalid_key", "The key recovered from the backup is not the one published for you.");
    }
    this.keys.identity = identity;
    await this.save(identity, true);
  }

  /** @param {Keypair} identity @param {boolean} backupStored */
  save(identity, backupStored) {
    return saveIdentity({ user: this.e2e.me, secret: identity.toBytes(), fingerprint: identity.fingerprint, backupStored });
  }
}
