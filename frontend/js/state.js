// @ts-check
// What this signed-in browser knows, updated from HTTP answers and socket
// events. Views read it and listen for "change" events; nothing here
// touches the DOM.
import { get } from "./api.js";

/** @import { User } from "./e2e/index.js" */

// What the server sends (departments, threads, messages, receipts, patients, members)
// is typed `any` here: its shapes are the protocol's (docs/protocol.md).

/**
 * What `change` events carry: what changed, and where (`changed` below).
 * @typedef {CustomEvent<{what: string, thread?: number, department?: number, seq?: number, frame?: any}>} ChangeEvent
 */

export class State extends EventTarget {
  /** @param {User} user */
  constructor(user) {
    super();
    this.user = user;
    /** @type {Map<number, any>} id → {id, name, slug, role, event_seq} */
    this.departments = new Map();
    /** @type {Map<number, any>} id → thread */
    this.threads = new Map();
    /** @type {Set<number>} */
    this.loadedDepartments = new Set();
    /** @type {Map<number, Map<number, any>>} thread → Map(seq → entry) */
    this.messages = new Map();
    /** @type {Map<string, any>} client_msg_id → pending entry */
    this.outbox = new Map();
    /** @type {Map<number, Map<number, any>>} thread → Map(user id → {user, up_to_seq, read_at}) */
    this.receipts = new Map();
    // My unread counts, from the thread listing's `unread` and `last_read_seq`
    // (counted by the server: others' messages after my receipt, not redacted),
    // then kept live here: +1 on another's message, down on my receipts.
    /** @type {Map<number, number>} thread → count */
    this.unreadCounts = new Map();
    /** @type {Map<number, number>} thread → my highest up_to_seq */
    this.readUpTo = new Map();
    /** @type {Map<number, Map<number, {username: string, user: any, until: number}>>} thread → Map(user id → …) */
    this.typing = new Map();
    /** @type {Map<number, any>} id → patient */
    this.patients = new Map();
    /** @type {Map<number, any[]>} department → [{user, role, admitted_at}] */
    this.members = new Map();
  }

  /** @param {string} what @param {Record<string, any>} [detail] */
  changed(what, detail = {}) {
    this.dispatchEvent(new CustomEvent("change", { detail: { what, ...detail } }));
  }

  /** @param {number} department */
  isHead(department) {
    return this.departments.get(department)?.role === "head";
  }

  /** @param {number} thread @returns {number} */
  myRead(thread) {
    return Math.max(this.readUpTo.get(thread) ?? 0, this.receipts.get(thread)?.get(this.user.id)?.up_to_seq ?? 0);
  }

  /** Never more than the messages after my receipt, whatever a late answer said. @param {number} thread */
  unread(thread) {
    const t = this.threads.get(thread);
    if (!t) return 0;
    return Math.max(0, Math.min(this.unreadCounts.get(thread) ?? 0, t.last_seq - this.myRead(thread)));
  }

  /** My receipt moved to `upToSeq` (here, from another device, or as loaded). @param {number} thread @param {number} upToSeq */
  readTo(thread, upToSeq) {
    if (upToSeq <= (this.readUpTo.get(thread) ?? 0)) return;
    this.readUpTo.set(thread, upToSeq);
    const t = this.threads.get(thread);
    const left = t ? Math.max(0, t.last_seq - upToSeq) : 0;
    this.unreadCounts.set(thread, Math.min(this.unreadCounts.get(thread) ?? 0, left));
  }

  /** @param {number} department @returns {number} */
  departmentUnread(department) {
    // Before its threads are loaded, the count `GET /api/departments` gave, if any.
    const listed = this.departments.get(department)?.unread;
    if (!this.loadedDepartments.has(department) && listed !== undefined) return listed;
    let total = 0;
    for (const t of this.threads.values()) if (t.department === department) total += this.unread(t.id);
    return total;
  }

  /** A message I had not read was redacted: one fewer to read. @param {number} thread @param {number} seq */
  unreadGone(thread, seq) {
    if (seq > this.myRead(thread)) this.unreadCounts.set(thread, Math.max(0, (this.unreadCounts.get(thread) ?? 0) - 1));
  }

  /** @param {number} department @param {{force?: boolean}} [options] */
  async loadDepartment(department, { force = false } = {}) {
    if (this.loadedDepartments.has(department) && !force) return;
    // One request: each thread comes with my unread count and my receipt.
    const threads = await get(`/api/departments/${department}/threads`);
    for (const { unread, last_read_seq: readUpTo, ...t } of threads) {
      this.threads.set(t.id, t);
      this.unreadCounts.set(t.id, unread);
      this.readUpTo.set(t.id, readUpTo);
    }
    this.loadedDepartments.add(department);
    this.changed("threads", { department });
  }

  /** @param {number} thread */
  async loadReceipts(thread) {
    const data = await get(`/api/threads/${thread}/receipts`);
    /** @type {Map<number, any>} */
    const map = new Map();
    for (const r of data.receipts) map.set(r.user.id, r);
    this.receipts.set(thread, map);
    const mine = map.get(this.user.id);
    if (mine) this.readTo(thread, mine.up_to_seq);
  }

  /** @param {number} id */
  async patient(id) {
    if (!this.patients.has(id)) this.patients.set(id, await get(`/api/patients/${id}`));
    return this.patients.get(id);
  }

  // The patient's own record, with its retention: a search result, cached above, has none.
  /** @param {number} id */
  async patientRecord(id) {
    if (!("retention" in (this.patients.get(id) ?? {}))) this.patients.set(id, await get(`/api/patients/${id}`));
    return this.patients.get(id);
  }

  /**
   * @param {number} department
   * @param {{force?: boolean}} [options]
   * @returns {Promise<any[]>}
   */
  async departmentMembers(department, { force = false } = {}) {
    if (force || !this.members.has(department)) {
      this.members.set(department, await get(`/api/departments/${department}/members`));
    }
    return /** @type {any[]} */ (this.members.get(department)); // held: set just above, or before
  }

  /** @param {number} department @param {{id: number, username?: string}} user the username, when known, if the member list lacks them */
  displayName(department, user) {
    const member = (this.members.get(department) || []).find((m) => m.user.id === user.id);
    return member?.user.display_name || user.username;
  }

  /** @param {number} thread */
  threadMessages(thread) {
    let map = this.messages.get(thread);
    if (!map) this.messages.set(thread, (map = new Map()));
    return map;
  }

  /** Apply a pushed event (already in order and once, see socket.js). @param {any} frame */
  apply(frame) {
    switch (frame.type) {
      case "message.new": {
        const m = frame.message;
        const t = this.threads.get(m.thread);
        if (m.sender.id !== this.user.id && !m.redacted && m.seq > this.myRead(m.thread) && (!t || m.seq > t.last_seq)) {
          this.unreadCounts.set(m.thread, (this.unreadCounts.get(m.thread) ?? 0) + 1);
        }
        if (t) t.last_seq = Math.max(t.last_seq, m.seq);
        this.changed("message", { thread: m.thread, department: frame.department, message: m });
        break;
      }
      case "receipt.new": {
        let receipts = this.receipts.get(frame.thread);
        if (!receipts) this.receipts.set(frame.thread, (receipts = new Map()));
        receipts.set(frame.user.id, frame);
        if (frame.user.id === this.user.id) this.readTo(frame.thread, frame.up_to_seq);
        this.changed("receipt", { thread: frame.thread });
        break;
      }
      case "thread.created":
      case "thread.closed":
      case "thread.reopened":
        this.threads.set(frame.thread.id, frame.thread);
        this.changed("thread", { thread: frame.thread.id, department: frame.department });
        break;
      case "thread.patient_changed": // two records of one patient merged (docs/interop.md)
        this.patients.delete(frame.previous.id);
        this.patients.delete(frame.patient.id);
        this.threads.set(frame.thread.id, frame.thread);
        this.changed("thread", { thread: frame.thread.id, department: frame.department });
        break;
      case "member.admitted":
      case "member.removed":
      case "member.role_changed":
        this.members.delete(frame.department);
        if (frame.user.id === this.user.id) {
          if (frame.type === "member.removed") this.departments.delete(frame.department);
          else this.refreshDepartments();
        }
        this.changed("members", { department: frame.department });
        break;
      case "membership.signed": // a head signed an admission, a removal, a role or a new key
        this.members.delete(frame.department);
        this.changed("members", { department: frame.department });
        break;
      case "typing": {
        let map = this.typing.get(frame.thread);
        if (!map) this.typing.set(frame.thread, (map = new Map()));
        if (frame.active) map.set(frame.user.id, { username: frame.user.username, user: frame.user, until: Date.now() + 10000 });
        else map.delete(frame.user.id);
        this.changed("typing", { thread: frame.thread });
        break;
      }
      default:
        this.changed(frame.type, { frame });
    }
  }

  async refreshDepartments() {
    const list = await get("/api/departments");
    this.departments = new Map(list.map((/** @type {any} */ d) => [d.id, d]));
    this.changed("departments");
  }
}
