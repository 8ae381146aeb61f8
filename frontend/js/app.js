// @ts-check
// Rounds in the browser: sign-in, keys, the socket, and a hash router that
// mounts one view at a time into <main>. Views live in views/ and export
// `render(app, params)` returning {el, title, back?, unmount?}. Photos
// (photos/*.js) travel as encrypted blobs referenced by a message whose
// signed body holds their keys; the library and the weekly review are views.
import * as c from "./crypto.js";
import { get, post, setSignedOutHandler } from "./api.js";
import { E2E } from "./e2e/index.js";
/** @import { Pins } from "./pins.js" */
/** @import { User } from "./e2e/index.js" */
/** @import { Frame } from "./socket.js" */
/** @import { Hello, History, LoginBody, Message, PhotoBody, Posted, Receipt, Redacted, Refusal, UserRef } from "./types/api.js" */
import { wipeKeys } from "./keystore.js";
import { openWhenKeysArrive } from "./latekeys.js";
import { forget as forgetCopy } from "./devicecopy.js";
import { forgetHabits } from "./photos/habits.js";
import { loadPins, mismatches, serverInstitutionKeys, unconfirmed } from "./pins.js";
import { RoundsSocket } from "./socket.js";
import { State } from "./state.js";
import { byId, toast } from "./ui.js";
import { loadLanguage, t } from "./i18n.js";
import { forgetBodyImages, forgetImages, readBody } from "./photos/photos.js";
import * as login from "./views/login.js";
import { askSignOut } from "./views/signout.js";
import { ROUTES } from "./routes.js";
import { Reader } from "./compliance/reader.js";
import { corrected } from "./corrections.js";
import { watchAdvice } from "./advice.js";
import * as notifications from "./notifications.js";

/**
 * A screen (docs/browser.md, "Layout"): render(app, ...route numbers, query).
 * @typedef {{el: HTMLElement, title?: string, back?: boolean, focus?: HTMLElement | null, unmount?: () => void}} Mounted
 * @typedef {{render: (app: App, ...params: any[]) => Mounted}} View
 */

/**
 * A message as this browser keeps it (state.messages): the server's, with what opening
 * it gave: its text (null when it could not be read: `error` says why), its photos body,
 * the sender's signed clock; a redaction seen live names who redacted it. A corrected
 * message shows its latest version (`edited`: that version's number) when the
 * correction verified, else its original text with `correctionError` set.
 * @typedef {Omit<Message, "redacted"> & {
 *   text: string | null, body: PhotoBody | null, error: unknown, sentAt?: string,
 *   edited?: number | null, correctionError?: string | null,
 *   duplicateOf?: number | null, redacted: Redaction | null,
 *   pending?: undefined, failed?: undefined, photos?: undefined}} Entry
 * @typedef {{at: string | null, by: number | UserRef}} Redaction
 * A message of mine on its way (state.outbox), shown until the server's copy arrives.
 * @typedef {{client_msg_id: string, text: string, photos: PhotoBody | null, thread: number,
 *   sender: UserRef, created_at: string, pending: true, seq?: number, failed?: unknown,
 *   id?: undefined, redacted?: undefined, sentAt?: undefined}} Pending
 */

/**
 * The app while someone is signed in, as photos/photos.js takes it: it reads `state` and
 * `e2e` as they are (a session that ended meanwhile fails there with a TypeError).
 * @typedef {App & {state: State, e2e: E2E}} SignedIn
 */


export class App {
  constructor() {
    /** @type {State | null} null while signed out */
    this.state = null;
    /** @type {E2E | null} */
    this.e2e = null;
    /** @type {RoundsSocket | null} null until the keys are ready */
    this.socket = null;
    /** @type {Pins | null} */
    this.pins = null;
    /** @type {ReturnType<typeof mismatches>} server institution keys that differ from the pins */
    this.pinProblems = [];
    /** @type {Mounted | null} */
    this.mounted = null;
    /** @type {string | null} "ready", "create", "backup", "unlock" or "recover" (e2e/identity.js state) */
    this.keyState = null;
    /** @type {Reader | null} an officer's review: what it verified and the room keys it opened (compliance/reader.js) */
    this.reader = null;
    /** @type {number | null} the conversation on screen, for read receipts */
    this.openThread = null;
    addEventListener("hashchange", () => this.route());
    byId("back").addEventListener("click", () => history.length > 1 ? history.back() : this.go("#/"));
    byId("signout").addEventListener("click", () => askSignOut(this));
    setSignedOutHandler(() => this.signedOutElsewhere());
    document.addEventListener("visibilitychange", () => this.openThread && this.markRead(this.openThread));
  }

  // What only a signed-in session uses, from the handlers and screens that exist only
  // then (sign-out clears the screen and stops the socket before it drops them).

  /** The signed-in user's state. */
  get session() {
    if (!this.state) throw new Error("not signed in");
    return this.state;
  }

  /** The signed-in user's end-to-end encryption. */
  get endToEnd() {
    if (!this.e2e) throw new Error("not signed in");
    return this.e2e;
  }

  /** Once the socket exists and is open: the keys are ready a moment before (connect()). */
  async connected() {
    while (!this.socket) {
      if (!this.state) throw Object.assign(new Error("signed out"), { code: "not_connected" });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await this.socket.ready();
  }

  /** A thread of this session, awaited if sent to before the hello listed it. @param {number} threadId */
  async threadOf(threadId) {
    if (!this.session.threads.has(threadId)) {
      await this.connected();
      for (const department of this.session.departments.keys()) {
        if (this.session.threads.has(threadId)) break;
        await this.session.loadDepartment(department);
      }
    }
    const thread = this.session.threads.get(threadId);
    if (!thread) throw Object.assign(new Error(t("Thread not found.")), { code: "not_found" });
    return thread;
  }

  /** The socket, once the keys are ready. */
  get live() {
    if (!this.socket) throw new Error("not connected");
    return this.socket;
  }

  /** The institution pins of this browser. */
  get pinned() {
    if (!this.pins) throw new Error("not signed in");
    return this.pins;
  }

  /** A compliance officer's reader (compliance/reader.js). */
  get review() {
    if (!this.reader) throw new Error("not signed in as a compliance officer");
    return this.reader;
  }

  async boot() {
    await Promise.all([c.ready, loadLanguage()]);
    try {
      const me = await get("/api/auth/me");
      await this.startSession(me);
    } catch {
      this.showLogin();
    }
  }

  /** @param {string} hash */
  go(hash) {
    if (location.hash === hash) this.route();
    else location.hash = hash;
  }

  /** @param {string} username @param {string} password */
  async signIn(username, password) {
    /** @type {LoginBody} */
    const result = await post("/api/auth/login", { username, password });
    await this.startSession(result.user);
  }

  /** @param {User} user as /api/auth/me gives it */
  async startSession(user) {
    this.state = new State(user);
    watchAdvice(this); // advice.updated: kept, and alerts (advice.js)
    notifications.attach(this); // the unread count in the title and badge; the push worker (docs/push.md)
    this.pins = await loadPins();
    this.e2e = new E2E(user, this.pins);
    // A compliance officer reads under review cases with the compliance key file, not a key of their own.
    this.reader = user.is_compliance_officer ? new Reader(user, this.pins) : null;
    this.keyState = await this.endToEnd.keyState();
    byId("signout").hidden = false;
    if (this.keyState !== "ready") {
      if (user.is_compliance_officer) {
        if (!(await this.settlePins())) this.go("#/pin");
        // A reload keeps the console's screen (a case, a thread); anything else leads to it.
        else if (/^#\/(compliance|library)/.test(location.hash)) this.route();
        else this.go("#/compliance");
        return;
      }
      // An administrator appoints heads with the institution's key, not a key of their own.
      this.go(user.is_admin ? "#/admin" : "#/keys");
      return;
    }
    this.connect();
  }

  /** Where a user without keys on this browser goes: administration, the compliance console, or key set-up. */
  keylessHome() {
    const user = this.session.user;
    return user.is_admin ? "#/admin" : user.is_compliance_officer ? "#/compliance" : "#/keys";
  }

  /** Routes open before this browser holds the user's keys: key set-up, an administrator's, an officer's. @param {string} hash */
  openWithoutKeys(hash) {
    const user = this.state?.user;
    if (hash === "#/keys") return true;
    if (user?.is_admin && ["#/admin", "#/pin"].includes(hash)) return true;
    return Boolean(user?.is_compliance_officer)
      && (hash === "#/pin" || /^#\/compliance(\/|$)/.test(hash) || /^#\/library(\?|$)/.test(hash));
  }

  /**
   * Compare the pins with the server's institution keys: a key to confirm first (no
   * deployment file: views/pin.js), or one that differs (kept in pinProblems, shown on
   * the home screen; every use refuses it). False while a key awaits confirmation.
   */
  async settlePins() {
    let server;
    try {
      server = await serverInstitutionKeys();
    } catch {
      return true; // offline: every use checks the pins anyway
    }
    const pins = this.pins;
    if (!pins) throw new Error("not signed in");
    this.pinProblems = mismatches(pins, server);
    return unconfirmed(pins, server).length === 0;
  }

  /** Keys are ready: open the socket and show the app, once every institution key is pinned. */
  async connect() {
    this.keyState = "ready";
    if (!(await this.settlePins())) {
      this.go("#/pin");
      return;
    }
    if (!this.state) return; // signed out meanwhile
    if (this.socket) {
      this.go("#/");
      return;
    }
    this.socket = new RoundsSocket({
      onEvent: (frame) => this.onEvent(frame),
      onHello: (hello, info) => this.onHello(hello, info),
      onState: (state) => this.showConnection(state),
      onAuthLost: () => this.signedOutElsewhere(),
    });
    this.live.start();
    if (["#/keys", "#/pin", ""].includes(location.hash)) this.go("#/");
    else this.route();
  }

  /** @param {Hello} hello @param {{resumed: boolean}} info */
  async onHello(hello, { resumed }) {
    this.session.departments = new Map(hello.departments.map((d) => [d.id, d]));
    if (!resumed) {
      // First socket, or a cursor the server refused: reload from the source.
      this.session.loadedDepartments.clear();
      this.session.messages.clear();
    }
    await Promise.all(hello.departments.map((d) => this.session.loadDepartment(d.id, { force: !resumed })));
    this.session.changed("departments");
    if (this.openThread) this.markRead(this.openThread);
  }

  /** @param {Frame} frame */
  async onEvent(frame) {
    this.endToEnd.observe(frame);
    if (frame.type === "message.redacted") {
      const { thread, seq } = frame.message;
      const entry = this.session.threadMessages(thread).get(seq);
      if (entry && !entry.redacted && entry.sender?.id !== this.session.user.id) this.session.unreadGone(thread, seq);
      this.redacted(thread, seq, { at: frame.redacted_at, by: frame.by });
      this.session.apply(frame);
      return;
    }
    if (frame.type === "message.corrected") {
      await corrected(this, frame.department, frame.message, frame.correction);
      this.session.apply(frame);
      return;
    }
    if (frame.type === "message.new") {
      this.session.apply(frame);
      await this.addMessage(frame.message, frame.department);
      // Equal to a message's thread, so not null.
      if (frame.message.thread === this.openThread) this.markRead(/** @type {number} */ (this.openThread));
      return;
    }
    this.session.apply(frame);
  }

  /**
   * Decrypt and keep a message once, whether it came live, by resume or from history.
   * @param {Message} message
   * @param {number} department
   * @returns {Promise<Entry>}
   */
  async addMessage(message, department) {
    const list = this.session.threadMessages(message.thread);
    const known = list.get(message.seq);
    if (known && (known.text !== null || known.redacted)) return known;
    /** @type {Entry} */
    const entry = { ...message, text: null, body: null, error: null };
    const mine = this.session.outbox.get(message.client_msg_id);
    if (message.redacted) {
      // Removed for members: the server sends no envelope, there is nothing to open.
      this.session.outbox.delete(message.client_msg_id);
      list.set(message.seq, entry);
      this.session.changed("decrypted", { thread: message.thread, seq: message.seq });
      return entry;
    }
    try {
      const { text, header, edited, version, correctionError } = await this.endToEnd.open(message, department);
      entry.sentAt = header.sent_at; // the sender's clock, signed: shown when far from the server's
      entry.edited = edited ? version : null;
      entry.correctionError = correctionError;
      // A photo message is refused whole when the server lists other photos than were signed.
      Object.assign(entry, readBody(text, message.attachments));
    } catch (error) {
      entry.error = error;
      // A duplicate is the first message delivered again: shown as such, pointing to it.
      if (/** @type {Refusal} */ (error).code === "duplicate") entry.duplicateOf = /** @type {Refusal} */ (error).data?.message_id ?? null;
      // My own message just sent, whose key this device has not fetched back: its text is mine.
      else if (mine && ["no_room_key", "network"].includes(/** @type {string} */ (/** @type {Refusal} */ (error).code))) Object.assign(entry, { text: mine.text, body: mine.photos ?? null });
    }
    this.session.outbox.delete(message.client_msg_id);
    list.set(message.seq, entry);
    this.session.changed("decrypted", { thread: message.thread, seq: message.seq });
    return entry;
  }

  /**
   * A message was redacted (by me, or an event): its text and photos go, a tombstone stays.
   * @param {number} thread
   * @param {number} seq
   * @param {Redaction} redacted
   */
  redacted(thread, seq, redacted) {
    const entry = this.session.threadMessages(thread).get(seq);
    if (!entry) return; // not loaded: its history page will say it is redacted
    forgetBodyImages(entry.body);
    Object.assign(entry, { redacted, text: null, body: null, error: null, envelope: null, attachments: [] });
    this.session.changed("decrypted", { thread, seq });
  }

  /**
   * Redact a message (the sender's "Delete", a head's "Redact"); retained for compliance.
   * @param {number} thread
   * @param {{id: number, seq: number}} message
   * @param {string} [reason]
   * @returns {Promise<Redacted>}
   */
  async redact(thread, message, reason = "") {
    /** @type {{type: "message.redact", message: number, reason?: string}} */
    const frame = { type: "message.redact", message: message.id };
    if (reason.trim()) frame.reason = reason.trim();
    await this.connected();
    /** @type {Redacted} */
    const ack = await this.live.request(frame);
    this.redacted(ack.thread ?? thread, ack.seq ?? message.seq, { at: ack.redacted_at, by: { id: this.session.user.id, username: this.session.user.username } });
    return ack;
  }

  /** @param {number} thread @param {number | null} [beforeSeq] @returns {Promise<History>} */
  async loadHistory(thread, beforeSeq = null) {
    /** @type {{type: "history.fetch", thread: number, limit: number, before_seq?: number}} */
    const frame = { type: "history.fetch", thread, limit: 50 };
    if (beforeSeq) frame.before_seq = beforeSeq;
    await this.connected();
    /** @type {History} */
    const page = await this.live.request(frame);
    const department = this.session.threads.get(thread)?.department;
    for (const message of page.messages) await this.addMessage(message, department);
    // Refused for want of a key a colleague's device is sharing: opened again, at once and as it arrives.
    const list = this.session.threadMessages(thread), open = (/** @type {Message} */ m) => this.addMessage(m, department);
    await openWhenKeysArrive(page.messages, (seq) => list.get(seq), open);
    return page;
  }

  /**
   * Encrypt and post; retried with the same id and envelope across reconnects, so never doubled.
   * A photo message passes its JSON `body` (what is encrypted), the `attachments` refs and the
   * `photos` body to show while it is pending; `text` is then the caption.
   * @param {number} threadId
   * @param {string} text
   * @param {{body?: string, attachments?: object[] | null, photos?: PhotoBody | null}} [options]
   * @returns {Promise<Posted>}
   */
  async send(threadId, text, { body = text, attachments = null, photos = null } = {}) {
    const clientMsgId = c.newClientMsgId();
    /** @type {Pending} */
    const pending = { client_msg_id: clientMsgId, text, photos, thread: threadId, sender: { id: this.session.user.id, username: this.session.user.username }, created_at: new Date().toISOString(), pending: true };
    this.session.outbox.set(clientMsgId, pending);
    this.session.changed("outbox", { thread: threadId });
    try {
      const thread = await this.threadOf(threadId);
      let envelope = await this.sealWhenReachable(body, { department: thread.department, thread: threadId, clientMsgId });
      let rekeyed = false;
      let internalErrors = 0;
      for (;;) {
        await this.connected();
        try {
          /** @type {{type: "message.post", thread: number, client_msg_id: string, envelope: typeof envelope, attachments?: object[]}} */
          const frame = { type: "message.post", thread: threadId, client_msg_id: clientMsgId, envelope };
          if (attachments) frame.attachments = attachments;
          /** @type {Posted} */
          const ack = await this.live.request(frame);
          // Remembered like an envelope opened, so a server delivering it again is caught (R6).
          await this.endToEnd.sent(clientMsgId, envelope, ack.message_id).catch(() => {});
          pending.seq = ack.seq;
          return ack;
        } catch (error) {
          if (["closed", "not_connected"].includes(/** @type {string} */ (/** @type {Refusal} */ (error).code))) continue;
          if (/** @type {Refusal} */ (error).code === "internal_error" && (internalErrors += 1) <= 10) {
            // Not stored, or stored without its ack: the same envelope and id again is safe.
            await new Promise((resolve) => setTimeout(resolve, 500 * internalErrors));
            continue;
          }
          if (/** @type {Refusal} */ (error).code === "timeout") {
            this.live.ws?.close(4000, "timeout");
            continue;
          }
          if (["key_rotation_required", "envelope_mismatch"].includes(/** @type {string} */ (/** @type {Refusal} */ (error).code)) && !rekeyed) {
            rekeyed = true; // not stored (a new key, or a consult's thread key): a new envelope under the same id is safe
            envelope = await this.sealWhenReachable(body, { department: thread.department, thread: threadId, clientMsgId, fresh: true });
            continue;
          }
          throw error;
        }
      }
    } catch (error) {
      pending.failed = error;
      this.session.changed("outbox", { thread: threadId });
      throw error;
    }
  }

  /**
   * Seal a message; a room key fetch that fails offline waits for the network, then tries again.
   * @param {string} text
   * @param {Parameters<E2E["seal"]>[1]} options
   */
  async sealWhenReachable(text, options) {
    for (;;) {
      try {
        return await this.endToEnd.seal(text, options);
      } catch (error) {
        if (/** @type {Refusal} */ (error).code !== "network") throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
        await this.connected();
      }
    }
  }

  /** @param {number} threadId */
  async markRead(threadId) {
    if (document.visibilityState !== "visible" || !this.socket?.isOnline) return;
    const thread = this.session.threads.get(threadId);
    if (!thread || thread.last_seq <= this.session.myRead(threadId)) return;
    try {
      /** @type {Receipt} */
      const result = await this.live.request({ type: "receipt.read", thread: threadId, up_to_seq: thread.last_seq });
      let receipts = this.session.receipts.get(threadId);
      if (!receipts) this.session.receipts.set(threadId, (receipts = new Map()));
      receipts.set(this.session.user.id, result);
      this.session.readTo(threadId, result.up_to_seq);
      this.session.changed("receipt", { thread: threadId });
    } catch {
      // retried on the next message, focus or reconnect
    }
  }

  /** @param {number} threadId @param {boolean} active */
  async typing(threadId, active) {
    try {
      await this.live.request({ type: "typing", thread: threadId, active });
    } catch {
      // typing is best effort
    }
  }

  /** @param {"connecting" | "online" | "offline"} state */
  showConnection(state) {
    const el = byId("conn");
    el.dataset.state = state;
    el.textContent = { online: "", connecting: t("Connecting…"), offline: t("Offline — reconnecting") }[state];
  }

  showLogin() {
    this.mount(login, []);
  }

  /**
   * @param {{forget?: boolean, kept?: false | "pin" | "passkey"}} [options] views/signout.js: `forget` ("Not my
   * computer") also erases the user's kept copy and trust records; `kept`: a copy stays, locked so
   */
  async signOut({ forget = false, kept = false } = {}) {
    const trust = this.e2e?.trust;
    notifications.beforeSignOut(); // this device's push subscription goes with the session
    this.socket?.stop(); // our own logout closes it with 4401: not "signed out elsewhere"
    this.clearScreen(); // at once: the next person at a ward computer sees nothing of this one
    let ended = true;
    try {
      await post("/api/auth/logout");
    } catch (error) {
      ended = /** @type {Refusal} */ (error).status === 401; // signed out already; a network error leaves the session open
    }
    await this.wipe();
    if (forget && trust) await Promise.all([forgetCopy(trust.user), trust.forget(), forgetHabits(trust.user)]);
    const keys = kept === "passkey" ? t("Your keys stay on this computer, locked with your passkey.") : kept ? t("Your keys stay on this computer, locked with your PIN.") : forget ? t("Nothing of yours is left on this computer.") : t("The keys were removed from this browser.");
    toast(ended ? t("Signed out. {keys}", { keys }) : t("{keys} The server could not be reached to end the session: sign out again when the network is back.", { keys }));
  }

  async signedOutElsewhere() {
    if (!this.state) return; // not signed in yet: nothing ended
    await this.wipe();
    toast(t("Your session ended. Sign in again."));
  }

  /**
   * End the session on this device: the screen first, then the keys. On a shared ward
   * computer the next person must not see the last one's patients, not even until the
   * keys are deleted, so nothing here waits before the page is cleared, and a view whose
   * clean-up fails cannot leave its content behind.
   */
  async wipe() {
    this.clearScreen();
    this.socket?.stop();
    this.socket = null;
    this.e2e = null;
    this.reader?.forget(); // the room keys an officer's review opened
    this.reader = null;
    this.state = null;
    this.pins = null;
    this.keyState = null;
    forgetImages();
    history.replaceState(null, "", "/");
    this.showLogin();
    await wipeKeys();
  }

  /** Unmount the open view (its listeners still see the state) and blank every part of the page it wrote. */
  clearScreen() {
    const mounted = this.mounted;
    this.mounted = null;
    this.openThread = null;
    try {
      mounted?.unmount?.();
    } catch (error) {
      console.error("a view's clean-up failed at sign-out", error);
    }
    for (const dialog of document.querySelectorAll("dialog")) if (dialog.open) dialog.close();
    for (const dialog of document.querySelectorAll("body > dialog")) dialog.remove(); // photo viewer, photo sheet
    byId("view").replaceChildren();
    byId("title").textContent = "Rounds";
    document.title = "Rounds";
    byId("back").hidden = true;
    byId("signout").hidden = true;
    this.showConnection("online");
  }

  route() {
    if (!this.state) return this.showLogin();
    if (this.keyState !== "ready" && !this.openWithoutKeys(location.hash)) return this.go(this.keylessHome());
    for (const [pattern, view] of ROUTES) {
      const match = pattern.exec(location.hash);
      if (match) return this.mount(view, match.slice(1).map(Number), this.query());
    }
    this.go("#/");
  }

  /** The `?a=1&b=2` part of the hash route (library filters), as URLSearchParams. */
  query() {
    const at = location.hash.indexOf("?");
    return new URLSearchParams(at < 0 ? "" : location.hash.slice(at + 1));
  }

  /** A view's title once its data arrived; ignored if that view has left the screen meanwhile. @param {HTMLElement} el @param {string} title */
  retitle(el, title) {
    if (this.mounted?.el !== el) return;
    byId("title").textContent = title;
    document.title = `${title} — Rounds`;
  }

  /** @param {View} view @param {number[]} params the route's numbers @param {URLSearchParams} [query] */
  mount(view, params, query = new URLSearchParams()) {
    this.mounted?.unmount?.();
    this.openThread = null;
    const mounted = view.render(this, ...params, query);
    this.mounted = mounted;
    const main = byId("view");
    main.replaceChildren(mounted.el);
    byId("title").textContent = mounted.title || "Rounds";
    document.title = mounted.title && mounted.title !== "Rounds" ? `${mounted.title} — Rounds` : "Rounds";
    byId("back").hidden = !mounted.back;
    mounted.focus?.focus();
  }
}

const app = new App();
window.rounds = app; // for the browser tests and for support staff in the console
app.boot();
