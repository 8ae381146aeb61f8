// @ts-check
// The one WebSocket to /ws/ (docs/protocol.md): request ids resolved by
// ack/error, a per-department cursor, and reconnect + resume that delivers
// every missed event once, in event_seq order.
//
// After a reconnect the new socket pushes live events from its `hello` on,
// while `resume` replays the older ones: pushed frames are held until the
// resume ack, then released sorted per department, each (department,
// event_seq) once and none at or below the cursor we resumed from. The
// saved cursor only moves once the ack has come (protocol rule 3).

import { t } from "./i18n.js";

const REQUEST_TIMEOUT_MS = 15000;
const PING_EVERY_MS = 25000;
const BACKOFF_MS = [300, 1000, 2000, 4000, 8000, 15000];

/** @typedef {Record<string, number>} Cursor department (as a string) → last event_seq applied */
/** @typedef {Record<string, any> & {type: string}} Frame a frame as the server sends it (docs/protocol.md) */

export class SocketError extends Error {
  /** @param {string} code @param {string} message @param {Record<string, any>} [data] */
  constructor(code, message, data = {}) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

/**
 * @param {Frame[]} frames
 * @param {Cursor} cursor
 */
export function inOrderOnce(frames, cursor) {
  const last = { ...cursor };
  const numbered = frames
    .filter((f) => "event_seq" in f)
    .sort((a, b) => (a.department - b.department) || (a.event_seq - b.event_seq));
  const released = [];
  for (const frame of numbered) {
    const key = String(frame.department);
    if (key in last && frame.event_seq <= last[key]) continue;
    last[key] = frame.event_seq;
    released.push(frame);
  }
  return released.concat(frames.filter((f) => !("event_seq" in f)));
}

export class RoundsSocket {
  /**
   * onEvent(frame): a pushed frame, numbered ones in order and once.
   * onHello(hello, {resumed}): each new socket, after the resume when there is one.
   * onState(state): "connecting" | "online" | "offline".
   * onAuthLost(): closed with 4401 (signed out elsewhere, expired).
   * @param {object} handlers
   * @param {(frame: any) => void} [handlers.onEvent]
   * @param {(hello: any, info: {resumed: boolean}) => void} [handlers.onHello]
   * @param {(state: "connecting" | "online" | "offline") => void} [handlers.onState]
   * @param {() => void} [handlers.onAuthLost]
   */
  constructor({ onEvent, onHello, onState, onAuthLost }) {
    this.onEvent = onEvent;
    this.onHello = onHello;
    this.onState = onState;
    this.onAuthLost = onAuthLost;
    /** @type {Cursor | null} null until the first hello */
    this.cursor = null;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {Map<string, {resolve: (result: any) => void, reject: (error: SocketError) => void, timer: ReturnType<typeof setTimeout>}>} */
    this.pending = new Map();
    this.nextId = 1;
    /** @type {Frame[] | null} pushed frames held while a resume is under way */
    this.held = null;
    this.attempt = 0;
    this.stopped = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pinger = undefined;
    /** @type {Frame | null} */
    this.hello = null;
    /** @type {(() => void)[]} */
    this.readyWaiters = [];
    this.isOnline = false;
    addEventListener("online", () => this.reconnectSoon(0));
    addEventListener("offline", () => this.ws?.close(4000, "offline"));
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    this.ws?.close(1000, "signed out");
    this.ws = null;
  }

  /**
   * Resolves once a socket is open and resumed.
   * @returns {Promise<void>}
   */
  ready() {
    if (this.isOnline) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** @param {"connecting" | "online" | "offline"} state */
  setState(state) {
    this.isOnline = state === "online";
    this.onState?.(state);
    if (this.isOnline) this.readyWaiters.splice(0).forEach((resolve) => resolve());
  }

  open() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    this.setState("connecting");
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (message) => this.receive(ws, message.data);
    ws.onclose = (event) => this.closed(ws, event.code);
  }

  /** @param {WebSocket} ws @param {number} code */
  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.held = null;
    clearInterval(this.pinger);
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new SocketError("closed", t("The connection dropped."), { close_code: code }));
    }
    this.pending.clear();
    this.setState("offline");
    if (code === 4401) {
      this.stopped = true;
      this.onAuthLost?.();
      return;
    }
    // 4503: this server process is restarting and has answered every post it took;
    // another one takes over at once (a short jitter keeps a ward from arriving together).
    this.reconnectSoon(code === 4503 ? Math.random() * 250 : null);
  }

  /** @param {number | null} [delay] ms; null: the next back-off step */
  reconnectSoon(delay = null) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (delay === null) {
      const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      delay = base / 2 + Math.random() * base; // jitter: a ward's phones do not all return at once
      this.attempt += 1;
    }
    this.timer = setTimeout(() => (navigator.onLine === false ? this.reconnectSoon() : this.open()), delay);
  }

  /** @param {WebSocket} ws @param {string} raw */
  async receive(ws, raw) {
    if (ws !== this.ws) return;
    /** @type {Frame} */
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    const waiting = frame.type === "ack" || frame.type === "error" ? this.pending.get(frame.id) : undefined;
    if (waiting) {
      const { resolve, reject, timer } = waiting;
      this.pending.delete(frame.id);
      clearTimeout(timer);
      if (frame.type === "ack") resolve(frame.result);
      else reject(new SocketError(frame.code, frame.message, frame.data || {}));
      return;
    }
    if (frame.type === "hello") {
      await this.greeted(ws, frame);
      return;
    }
    if (this.held !== null) {
      this.held.push(frame);
      return;
    }
    this.deliver(frame);
  }

  /** @param {Frame} frame */
  deliver(frame) {
    // Frames are delivered only after the first hello set the cursor.
    const cursor = /** @type {Cursor} */ (this.cursor);
    if ("event_seq" in frame) {
      const key = String(frame.department);
      if (key in cursor && frame.event_seq <= cursor[key]) return; // already applied
      cursor[key] = frame.event_seq;
    }
    if (frame.type === "member.removed" && frame.user?.id === this.hello?.user?.id) {
      delete cursor[String(frame.department)];
    }
    this.onEvent?.(frame);
  }

  /** @param {WebSocket} ws @param {Frame} hello */
  async greeted(ws, hello) {
    this.hello = hello;
    this.attempt = 0;
    this.pinger = setInterval(() => this.ping(), PING_EVERY_MS);
    if (this.cursor === null) {
      this.cursor = { ...hello.cursor };
      this.setState("online");
      this.onHello?.(hello, { resumed: false });
      return;
    }
    const saved = { ...this.cursor };
    // Departments joined while away start from hello; the rest resume from our cursor.
    for (const [dep, seq] of Object.entries(hello.cursor)) if (!(dep in saved)) saved[dep] = seq;
    for (const dep of Object.keys(saved)) if (!(dep in hello.cursor)) delete saved[dep];
    this.held = [];
    try {
      await this.send({ type: "resume", cursor: saved }, ws);
    } catch (error) {
      if (error instanceof SocketError && error.code === "cursor_invalid") {
        // A cursor from a restored server: reload that department from history.
        this.cursor = { ...hello.cursor };
        this.held = null;
        this.setState("online");
        this.onHello?.(hello, { resumed: false });
        return;
      }
      if (ws === this.ws) ws.close(4000, "resume failed");
      return;
    }
    const held = this.held ?? [];
    this.held = null;
    this.cursor = saved;
    for (const frame of inOrderOnce(held, saved)) this.deliver(frame);
    this.setState("online");
    this.onHello?.(hello, { resumed: true });
  }

  async ping() {
    try {
      await this.request({ type: "ping" }, 10000);
    } catch (error) {
      // No answer: the link is dead even if TCP has not noticed. Start again.
      if (error instanceof SocketError && error.code === "timeout") this.ws?.close(4000, "ping timeout");
    }
  }

  /**
   * @param {Record<string, any>} frame without its id
   * @param {WebSocket | null} [ws]
   * @param {number} [timeoutMs]
   * @returns {Promise<any>} the ack's result
   */
  send(frame, ws = this.ws, timeoutMs = REQUEST_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        reject(new SocketError("not_connected", t("Not connected.")));
        return;
      }
      const id = `b${this.nextId++}`;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SocketError("timeout", t("The server did not answer in time.")));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  /**
   * Send a request once the socket is online; its ack's result, or a SocketError.
   * @param {Record<string, any>} frame
   * @param {number} [timeoutMs]
   * @returns {Promise<any>}
   */
  async request(frame, timeoutMs = REQUEST_TIMEOUT_MS) {
    if (!this.isOnline) throw new SocketError("not_connected", t("Not connected."));
    return this.send(frame, this.ws, timeoutMs);
  }
}
