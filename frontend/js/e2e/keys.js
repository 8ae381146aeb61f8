// @ts-check
// What the browser holds in memory to read and write (client/keys.py
// KeyRing): pure state, no I/O. The identity key pair (also at rest in
// keystore.js, wiped at sign-out), room keys and their verified key version
// records by (department, version), consults' thread keys and their records
// by (department, thread, version) apart (docs/crypto.md §14: a thread key is
// never a room key), and which version was last checked as current for posting. What must survive a reload (heads, highest versions,
// envelopes seen) is in trust.js instead.
import { sameRoomKey } from "../crypto.js";

/** @import { Identity, KeyVersionRecord, RoomKey } from "../crypto.js" */

/** @param {number} department @param {number} version @param {number | null} [thread] a consult's thread key */
const slot = (department, version, thread = null) => thread === null ? `${department}:${version}` : `${department}:t${thread}:${version}`;

export class KeyRing {
  constructor() {
    /** @type {Identity | null} */
    this.identity = null;
    /** @type {Map<string, RoomKey>} "dep:version" → room key, "dep:tTHREAD:version" → thread key */
    this.roomKeys = new Map();
    /** @type {Map<string, KeyVersionRecord>} "dep:version" → key version record verified against the chain */
    this.records = new Map();
    /** @type {Map<number, number>} department → version checked as current */
    this.current = new Map();
  }

  /**
   * Keep a room key version; false if a different key is already held for it.
   * The first key held wins: a second one could not match the version's
   * commitment anyway, and is never allowed to replace it.
   */
  /** @param {RoomKey} key */
  addRoomKey(key) {
    const held = this.roomKeys.get(slot(key.department, key.version, key.thread));
    if (!held) {
      this.roomKeys.set(slot(key.department, key.version, key.thread), key);
      return true;
    }
    return sameRoomKey(held, key);
  }

  /** @param {number} department @param {number} version @param {number | null} [thread] @returns {RoomKey | null} */
  roomKey(department, version, thread = null) {
    return this.roomKeys.get(slot(department, version, thread)) ?? null;
  }

  /** @param {number} department @param {number} version @param {number | null} [thread] @returns {KeyVersionRecord | null} */
  record(department, version, thread = null) {
    return this.records.get(slot(department, version, thread)) ?? null;
  }

  /** @param {KeyVersionRecord} record */
  keepRecord(record) {
    this.records.set(slot(record.department, record.version, record.thread), record);
  }

  /** The versions of a department held with both their key and their verified record. @param {number} department */
  versions(department) {
    return [...this.roomKeys.values()]
      .filter((k) => k.department === department && k.thread === null && this.records.has(slot(department, k.version)))
      .map((k) => k.version)
      .sort((a, b) => a - b);
  }

  /** The key to post with, if one was checked (it may have gone stale since). @param {number} department */
  currentKey(department) {
    const version = this.current.get(department);
    return version === undefined ? null : this.roomKey(department, version);
  }

  /** @param {number} department */
  forgetCurrent(department) {
    this.current.delete(department);
  }
}
