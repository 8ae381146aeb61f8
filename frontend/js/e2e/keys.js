// @ts-check
// What the browser holds in memory to read and write (client/keys.py
// KeyRing): pure state, no I/O. The identity key pair (also at rest in
// keystore.js, wiped at sign-out), room keys and their verified key version
// records by (department, version), and which version was last checked as
// current for posting. What must survive a reload (heads, highest versions,
// envelopes seen) is in trust.js instead.
import { sameRoomKey } from "../crypto.js";

const slot = (department, version) => `${department}:${version}`;

export class KeyRing {
  constructor() {
    this.identity = null;
    this.roomKeys = new Map(); // "dep:version" → room key
    this.records = new Map(); // "dep:version" → key version record verified against the chain
    this.current = new Map(); // department → version checked as current
  }

  /**
   * Keep a room key version; false if a different key is already held for it.
   * The first key held wins: a second one could not match the version's
   * commitment anyway, and is never allowed to replace it.
   */
  addRoomKey(key) {
    const held = this.roomKeys.get(slot(key.department, key.version));
    if (!held) {
      this.roomKeys.set(slot(key.department, key.version), key);
      return true;
    }
    return sameRoomKey(held, key);
  }

  roomKey(department, version) {
    return this.roomKeys.get(slot(department, version)) ?? null;
  }

  record(department, version) {
    return this.records.get(slot(department, version)) ?? null;
  }

  keepRecord(record) {
    this.records.set(slot(record.department, record.version), record);
  }

  /** The versions of a department held with both their key and their verified record. */
  versions(department) {
    return [...this.roomKeys.values()]
      .filter((k) => k.department === department && this.records.has(slot(department, k.version)))
      .map((k) => k.version)
      .sort((a, b) => a - b);
  }

  /** The key to post with, if one was checked (it may have gone stale since). */
  currentKey(department) {
    const version = this.current.get(department);
    return version === undefined ? null : this.roomKey(department, version);
  }

  forgetCurrent(department) {
    this.current.delete(department);
  }
}
