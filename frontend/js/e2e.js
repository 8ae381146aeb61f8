// End-to-end keys for one signed-in user, ported from client/sdk.py and
// client/keys.py: identity set-up and recovery, room keys unwrapped (only
// from wrappers the signed membership admitted), rotated when needed and
// wrapped only for attested members and the pinned compliance key; message
// encryption and verified decryption with replay refusal; a head's signed
// admissions and removals.
import * as c from "./crypto.js";
import { ApiError, del, get, post, put } from "./api.js";
import { loadIdentity, saveIdentity, savePin } from "./keystore.js";
import { checkAttested, MembershipRefused, verifyListing } from "./membership.js";

const ROTATION_ATTEMPTS = 3;

export class E2EError extends Error {
  constructor(code, message, data = {}) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

export class E2E {
  constructor(user, pins) {
    this.me = user.id;
    this.pins = pins; // {admin, compliance}
    this.identity = null;
    this.roomKeys = new Map(); // "dep:version" → room key
    this.current = new Map(); // dep → version to post with
    this.identities = new Map(); // user → checked public identity
    this.seen = new Map(); // "sender:client_msg_id" → canonical envelope text
    this.unattested = new Map(); // dep → Set(user)
  }

  // --- Identity -------------------------------------------------------------

  async publishedIdentity(user) {
    try {
      const data = await get(`/api/keys/identity/${user}`);
      return c.checkedPublic(data.public, data.fingerprint, `identity of ${user}`);
    } catch (error) {
      if (error instanceof ApiError && error.code === "not_found") return null;
      throw error;
    }
  }

  /** What this browser must do: "ready", "create" (no key anywhere) or "recover" (key on another device). */
  async keyState() {
    const published = await this.publishedIdentity(this.me);
    const local = await loadIdentity(this.me);
    if (local) {
      const identity = c.identityFromBytes(local.secret);
      if (published && identity.fingerprint !== published.fingerprint) return "recover";
      this.identity = identity;
      if (!published) return "create"; // generated here, publication did not finish
      this.identities.set(this.me, published);
      return local.backupStored ? "ready" : "backup";
    }
    return published ? "recover" : "create";
  }

  /**
   * First sign-in: generate (or reuse the unfinished) identity, publish it, seal the
   * backup. With `passphrase` the user chose one (strength-checked first, SENSITIVE
   * limits); otherwise a generated secret is returned to show once.
   */
  async create({ passphrase = null, signal = null } = {}) {
    if (passphrase !== null) c.checkPassphraseStrength(passphrase);
    const identity = this.identity ?? c.generateIdentity();
    // Kept before publishing, so a retry publishes the same key.
    await saveIdentity({ user: this.me, secret: identity.toBytes(), fingerprint: identity.fingerprint, backupStored: false });
    this.identity = identity;
    try {
      await put("/api/keys/identity", { public: c.publicToDict(identity.public) });
    } catch (error) {
      if (error.code === "conflict") throw new E2EError("recovery_needed", "Your keys already exist on another device: enter your recovery secret.");
      throw error;
    }
    this.identities.set(this.me, identity.public);
    return this.storeBackup(passphrase, { signal });
  }

  /** Argon2id runs in a worker (crypto/backup.js); `signal` cancels it before anything is stored. */
  async storeBackup(passphrase = null, { signal = null } = {}) {
    const secret = passphrase ?? c.generateRecoverySecret();
    const blob = await c.sealBackupAsync(this.identity, secret, { userChosen: passphrase !== null, signal });
    await put("/api/keys/backup", { blob: c.b64encode(blob) });
    await saveIdentity({ user: this.me, secret: this.identity.toBytes(), fingerprint: this.identity.fingerprint, backupStored: true });
    return passphrase === null ? secret : null;
  }

  /** A new browser: open the server's backup with the recovery secret or passphrase. */
  async recover(secret, { signal = null } = {}) {
    const published = await this.publishedIdentity(this.me);
    let data;
    try {
      data = await get("/api/keys/backup");
    } catch (error) {
      if (error.code === "not_found") throw new E2EError("backup_missing", "The server keeps no backup of your keys.");
      throw error;
    }
    const identity = await c.openBackupAsync(c.b64decode(data.blob, { field: "blob" }), secret, { signal });
    if (!published || identity.fingerprint !== published.fingerprint) {
      throw new E2EError("invalid_key", "The key recovered from the backup is not the one published for you.");
    }
    this.identity = identity;
    this.identities.set(this.me, published);
    await saveIdentity({ user: this.me, secret: identity.toBytes(), fingerprint: identity.fingerprint, backupStored: true });
  }

  async identityOf(user, { refresh = false } = {}) {
    if (!refresh && this.identities.has(user)) return this.identities.get(user);
    const pub = await this.publishedIdentity(user);
    if (!pub) throw new E2EError("not_found", `User ${user} has not published keys.`);
    this.identities.set(user, pub);
    return pub;
  }

  // --- Signed membership ----------------------------------------------------

  async verifiedStatements(department) {
    const listing = await get(`/api/departments/${department}/statements`);
    return [listing, verifyListing(listing, this.pins.admin)];
  }

  async membership(department) {
    return (await this.verifiedStatements(department))[1];
  }

  async sign(department, kind, user, fingerprint, role) {
    const signed = c.makeStatement(this.identity, {
      kind, department, subject: user, subjectFingerprint: fingerprint, role, signerUser: this.me,
    });
    return post(`/api/departments/${department}/statements`, { signed });
  }

  /** As a head: sign a member's admission with the key the server shows now (after comparing it). */
  async attest(department, user) {
    const chain = await this.membership(department);
    const data = await get(`/api/departments/${department}/keys`);
    const member = data.members.find((m) => m.user === user);
    if (!member) throw new E2EError("not_found", `User ${user} is not a member.`);
    if (!member.identity) throw new E2EError("keys_not_published", "This member has not set up keys yet; sign their admission once they have.");
    const pub = c.checkedPublic(member.identity, member.fingerprint, `user ${user}`);
    const posted = [];
    let current = chain.members.get(user);
    if (current && current.fingerprint !== pub.fingerprint) {
      await this.sign(department, "remove", user, current.fingerprint, current.role);
      posted.push("remove");
      current = null;
    }
    if (!current) {
      await this.sign(department, "admit", user, pub.fingerprint, member.role);
      posted.push("admit");
    } else if (current.role !== member.role) {
      await this.sign(department, "role", user, pub.fingerprint, member.role);
      posted.push("role");
    }
    return posted;
  }

  async admit(department, user, role = "member") {
    const admitted = await post(`/api/departments/${department}/members`, { user_id: user, role });
    try {
      admitted.signed = await this.attest(department, user);
    } catch (error) {
      if (error.code !== "keys_not_published") throw error;
      admitted.signed = [];
    }
    return admitted;
  }

  /** Remove, then sign the removal so no client wraps a key for them again. */
  async removeMember(department, user) {
    const chain = await this.membership(department);
    const removed = await del(`/api/departments/${department}/members/${user}`);
    const current = chain.members.get(user);
    removed.signed = [];
    if (current) {
      await this.sign(department, "remove", user, current.fingerprint, current.role);
      removed.signed = ["remove"];
    }
    return removed;
  }

  // --- Room keys --------------------------------------------------------------

  wrapperIdentities(data) {
    const known = new Map();
    const candidates = (data.members || []).map((m) => [m.identity, m.fingerprint]);
    for (const [fp, w] of Object.entries(data.wrappers || {})) candidates.push([w.public, fp]);
    for (const [pub, fp] of candidates) {
      if (!pub || !fp) continue;
      try {
        const identity = c.checkedPublic(pub, fp, "wrapper");
        known.set(identity.fingerprint, identity);
      } catch {
        // its wraps then fail as made by an unknown wrapper
      }
    }
    known.set(this.identity.fingerprint, this.identity.public);
    return known;
  }

  addRoomKey(key) {
    const slot = `${key.department}:${key.version}`;
    const held = this.roomKeys.get(slot);
    if (!held) {
      this.roomKeys.set(slot, key);
      return true;
    }
    return c.sameRoomKey(held, key); // the first key held for a version wins
  }

  roomKeyOf(department, version) {
    return this.roomKeys.get(`${department}:${version}`) ?? null;
  }

  async loadWraps(department) {
    const data = await get(`/api/departments/${department}/keys`);
    const wrappers = this.wrapperIdentities(data);
    const refused = new Map();
    const pending = (data.my_wraps || []).filter((raw) => !this.roomKeyOf(department, raw?.version));
    let admitted = new Set();
    let chainError = null;
    if (pending.some((raw) => raw?.wrapper_fp !== this.identity.fingerprint)) {
      try {
        admitted = (await this.membership(department)).everAdmitted;
      } catch (error) {
        chainError = error;
      }
    }
    for (const raw of pending) {
      try {
        const record = c.parseWrapRecord(raw);
        if (record.department !== department) throw c.invalidEnvelope("the wrap names another department");
        if (record.wrapper_fp !== this.identity.fingerprint && !admitted.has(record.wrapper_fp)) {
          refused.set(record.version, chainError || new E2EError("unverified_member",
            "The wrap was made by a key the department's signed membership never admitted; it is not used."));
          continue;
        }
        const wrapper = wrappers.get(record.wrapper_fp);
        if (!wrapper) throw c.badSignature("the wrap was made by an identity the server does not show");
        this.addRoomKey(c.unwrapRoomKey(record, this.identity, wrapper));
      } catch (error) {
        if (!(error instanceof c.CryptoError)) throw error;
        if (Number.isInteger(raw?.version)) refused.set(raw.version, error);
      }
    }
    return [data, refused];
  }

  noKey(department, version, refused) {
    const reason = refused.get(version);
    if (reason) return reason;
    return new E2EError("no_room_key",
      "This device has no key for these messages yet: a colleague's device shares it when they next open the department.",
      { department, key_version: version });
  }

  /** The department's current room key, publishing the next version when one is needed. */
  async roomKey(department) {
    let lastError = null;
    for (let attempt = 0; attempt < ROTATION_ATTEMPTS; attempt++) {
      const [data, refused] = await this.loadWraps(department);
      const version = data.key_version;
      if (version && !data.rotation_required) {
        const key = this.roomKeyOf(department, version);
        if (!key) throw this.noKey(department, version, refused);
        this.current.set(department, version);
        return key;
      }
      try {
        return await this.publishNextVersion(department, data);
      } catch (error) {
        if (!["conflict", "wraps_incomplete"].includes(error.code)) throw error;
        const missing = new Set((error.data?.missing || []).map(String));
        const unverified = [...(this.unattested.get(department) || [])].map(String).filter((u) => missing.has(u));
        if (unverified.length) {
          throw new E2EError("unverified_member",
            `The server requires a key for members whose admission no head has signed (${unverified.join(", ")}); this device refuses.`,
            { users: unverified });
        }
        lastError = error;
      }
    }
    throw lastError;
  }

  async publishNextVersion(department, data) {
    const compliance = data.compliance ? c.checkedPublic(data.compliance.public, data.compliance.fingerprint, "compliance key") : null;
    const fingerprint = compliance?.fingerprint ?? null;
    if (this.pins.compliance && fingerprint !== this.pins.compliance) {
      throw new E2EError("compliance_key_mismatch",
        "The server's compliance key is not the one configured for this hospital; no room key was wrapped.",
        { pinned: this.pins.compliance, server: fingerprint });
    }
    if (!this.pins.compliance && fingerprint) {
      // Trust on first use, then refuse a change: remembered like the admin key.
      await savePin("compliance", fingerprint);
      this.pins.compliance = fingerprint;
    }
    const chain = await this.membership(department);
    const recipients = new Map([[this.identity.fingerprint, this.identity.public]]);
    const unattested = new Set();
    for (const member of data.members) {
      if (!member.identity) continue; // receives every version once they publish (shareHistory)
      const pub = c.checkedPublic(member.identity, member.fingerprint, `identity of ${member.user}`);
      if (member.user === this.me) {
        if (pub.fingerprint !== this.identity.fingerprint) throw new E2EError("invalid_key", "This browser's identity is not the one published for you.");
        continue;
      }
      try {
        checkAttested(chain, member.user, pub.fingerprint);
      } catch (error) {
        if (!(error instanceof MembershipRefused)) throw error;
        unattested.add(member.user);
        continue;
      }
      recipients.set(pub.fingerprint, pub);
    }
    this.unattested.set(department, unattested);
    if (compliance) recipients.set(compliance.fingerprint, compliance);
    const key = c.generateRoomKey(department, data.key_version + 1);
    const wraps = [...recipients.values()].map((r) => c.wrapRoomKey(key, r, this.identity));
    await post(`/api/departments/${department}/keys`, { version: key.version, wraps });
    this.addRoomKey(key);
    this.current.set(department, key.version);
    return key;
  }

  /** Wrap every version held for an attested member (a newcomer reads the history). */
  async shareHistory(department, user) {
    await this.loadWraps(department);
    const data = await get(`/api/keys/identity/${user}`);
    const recipient = c.checkedPublic(data.public, data.fingerprint, `user ${user}`);
    checkAttested(await this.membership(department), user, recipient.fingerprint);
    const shared = [];
    for (const key of this.roomKeys.values()) {
      if (key.department !== department) continue;
      try {
        await post(`/api/departments/${department}/keys/wraps`, { wraps: [c.wrapRoomKey(key, recipient, this.identity)] });
        shared.push(key.version);
      } catch (error) {
        if (error.code !== "conflict") throw error;
      }
    }
    return shared;
  }

  // --- Messages ---------------------------------------------------------------

  async currentKey(department) {
    const version = this.current.get(department);
    return (version && this.roomKeyOf(department, version)) || this.roomKey(department);
  }

  forgetCurrent(department) {
    this.current.delete(department);
  }

  async seal(text, { department, thread, clientMsgId, fresh = false }) {
    const plaintext = c.utf8(text);
    if (plaintext.length > c.MAX_PLAINTEXT) throw new E2EError("frame_too_large", "This message is too long.");
    if (fresh) this.forgetCurrent(department);
    const key = await this.currentKey(department);
    return c.encryptMessage(plaintext, { roomKey: key, thread, sender: this.me, clientMsgId, signer: this.identity });
  }

  remember(sender, clientMsgId, envelope) {
    const slot = `${sender}:${clientMsgId}`;
    if (!this.seen.has(slot)) this.seen.set(slot, c.fromUtf8(c.canonicalJson(envelope)));
  }

  /** Verify and decrypt a message (of message.new or a history page); the text, or an E2EError/CryptoError. */
  async open(message, department) {
    const sender = message.sender?.id ?? message.sender;
    const envelope = message.envelope;
    const header = c.parseEnvelope(envelope);
    if (header.thread !== message.thread || header.room !== department || header.sender !== sender || header.client_msg_id !== message.client_msg_id) {
      throw new E2EError("envelope_mismatch", "The envelope was made for another thread, department, sender or message id.");
    }
    let key = this.roomKeyOf(department, header.key_version);
    if (!key) {
      const [, refused] = await this.loadWraps(department);
      key = this.roomKeyOf(department, header.key_version);
      if (!key) throw this.noKey(department, header.key_version, refused);
    }
    const senderKey = await this.identityOf(sender);
    let plaintext;
    try {
      plaintext = c.decryptMessage(envelope, { roomKey: key, senderKey });
    } catch (error) {
      if (error.code !== "bad_signature") throw error;
      // A stale cached key, or a message older than the sender's current key:
      // their current key, then every key the signed membership admitted for them.
      const candidates = [await this.identityOf(sender, { refresh: true }), ...(await this.admittedKeys(department, sender))];
      plaintext = null;
      for (const candidate of candidates) {
        try {
          plaintext = c.decryptMessage(envelope, { roomKey: key, senderKey: candidate });
          break;
        } catch (again) {
          if (again.code !== "bad_signature") throw again;
        }
      }
      if (plaintext === null) throw error;
    }
    const slot = `${sender}:${message.client_msg_id}`;
    const text = c.fromUtf8(c.canonicalJson(envelope));
    if (this.seen.has(slot) && this.seen.get(slot) !== text) {
      throw new E2EError("replay", "Another message was already opened under this sender and message id.");
    }
    this.seen.set(slot, text);
    return c.fromUtf8(plaintext);
  }

  async admittedKeys(department, user) {
    const [listing, chain] = await this.verifiedStatements(department);
    const fps = listing.statements.map((s) => s.signed.statement).filter((s) => s.subject_user === user).map((s) => s.subject_fingerprint).reverse();
    return [...new Set(fps)].filter((fp) => listing.keys[fp] && chain.everAdmitted.has(fp)).map((fp) => c.checkedPublic(listing.keys[fp], fp, `key of ${user}`));
  }
}
