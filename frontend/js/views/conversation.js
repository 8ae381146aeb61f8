// @ts-check
// A patient thread: messages decrypted in this browser, live; who has seen
// them (time on tap); who is typing; a composer that survives a dropped
// network (app.send retries under the same client_msg_id); photos as
// decrypted thumbnails that open in the viewer, added with the photo sheet.
// The sender may delete their message and a head may redact any: it becomes
// a tombstone for everyone, and stays retained for compliance. The sender may
// edit a recent text message (corrections.js): everyone sees the new text
// marked edited, and every version is retained.
import { post } from "../api.js";
import { correct, editable } from "../corrections.js";
import { E2EError } from "../e2e/errors.js";
import { locale, t, tn } from "../i18n.js";
import { ImageUrls, consentLabel, keywordLabel, keywords } from "../photos/photos.js";
import { h, explain, fullTime, patientLabel, shortTime, toast } from "../ui.js";
import { confirmWithReason } from "./confirm.js";
import { openPhotoSheet } from "./photosheet.js";
import { adviceBadge, loadDepartment as loadAdvice } from "../advice.js";
import { composerTools } from "../mentions.js";
import { openAskSheet } from "./asksheet.js";
import { endConsult, guestThread } from "../consults.js";
import { openViewer } from "./viewer.js";

/** @import { Entry, Pending, Redaction } from "../app.js" */
/** @import { Keyword } from "../photos/photos.js" */
/** @import { ChangeEvent } from "../state.js" */
/** @import { MessageReaders, PhotoBody, Receipt, Retention, UserRef } from "../types/api.js" */

const TYPING_REFRESH_MS = 4000;
// The sender's clock (signed in the envelope) is shown beside the server's time when
// they differ by more: a message written offline, or delivered late by the server.
const CLOCK_GAP_MS = 10 * 60 * 1000;
const SVG = "http://www.w3.org/2000/svg";

const CAMERA = "M4 7h3l2-3h6l2 3h3a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1zm8 3a4 4 0 1 0 0 8 4 4 0 0 0 0-8z";
const PICTURE = "M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm-1 11l5-5 4 4 3-3 6 6M16 9.5a1.5 1.5 0 1 0 0 .01";

/** An outline icon (no emoji font on many ward PCs). @param {string} d */
function icon(d) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "1.8");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}

/** The button's word for a removal: a sender deletes their own, a head redacts. @param {"Delete" | "Redact"} verb */
function verbLabel(verb) {
  return verb === "Delete" ? t("Delete") : t("Redact");
}

/**
 * @param {import("../app.js").App} app
 * @param {number} threadId
 */
export function render(app, threadId) {
  const state = app.session;
  const me = state.user.id;
  const header = h("div", { class: "card stack" });
  const list = h("ol", { class: "messages", "aria-live": "polite", "aria-label": t("Messages") }); // no role=log: it would replace the list role, leaving its items outside a list
  const typingLine = h("p", { class: "typing", "aria-live": "polite" });
  const text = h("textarea", { id: "composer", name: "message", rows: 1, placeholder: t("Write a message"), "aria-label": t("Message") });
  const send = h("button", { class: "primary", type: "submit" }, t("Send"));
  // Take photo: the sheet opens with the camera running; Add photos: files, or the camera on request.
  const takePhoto = "getUserMedia" in (navigator.mediaDevices ?? {}) ? h("button", { type: "button", id: "take-photo-now", class: "camera-button", "aria-label": t("Take photo"),
    onclick: () => openPhotoSheet(app, threadId, { camera: true }).then(() => text.focus()) }, icon(CAMERA)) : null;
  const addPhotos = h("button", { type: "button", id: "add-photos", class: "camera-button", "aria-label": t("Add photos"),
    onclick: () => openPhotoSheet(app, threadId).then(() => text.focus()) }, icon(takePhoto ? PICTURE : CAMERA));
  // Ask for advice, `@` mentions and "!" (mentions.js); a question typed already goes into the sheet.
  const tools = composerTools(app, threadId, text, () => openAskSheet(app, threadId, { text: text.value.trim() }).then((made) => made && app.go(`#/r/${made.id}`)));
  const composer = h("form", { class: "composer", "aria-label": t("New message") }, tools.el, takePhoto, addPhotos, text, send);
  const urls = new ImageUrls();
  /** @type {Keyword[]} */
  let keywordList = [];
  keywords().then((list) => (keywordList = list)).catch(() => {});
  const dialog = h("dialog", { "aria-label": t("Seen by") });
  const redactDialog = h("dialog", { "aria-label": t("Remove a message"), id: "redact-dialog" });
  const editDialog = h("dialog", { "aria-label": t("Edit a message"), id: "edit-dialog" });
  let lastTyping = 0;
  let thread = state.threads.get(threadId);
  let department = thread?.department;

  const drawHeader = () => {
    thread = state.threads.get(threadId);
    if (!thread) return;
    department = thread.department;
    const head = state.isHead(department);
    const patientLine = h("p", { class: "muted" });
    const banner = h("p", { class: "notice", id: "retention-banner" }, retentionNotice(null));
    state.patientRecord(thread.patient).then((p) => {
      patientLine.textContent = t("{patient} · IPP {ipp}", { patient: patientLabel(p), ipp: p.ipp });
      app.retitle(el, patientLabel(p));
      banner.textContent = retentionNotice(p.retention);
    }).catch(() => {});
    const toggle = head ? h("button", {
      type: "button", class: thread.closed_at ? "" : "danger",
      onclick: async () => {
        try {
          // Closing asks first, with a reason for the audit trail; reopening does not.
          const closing = thread.closed_at ? null : await confirmWithReason({
            title: t("Close this conversation?"), id: "close", verb: t("Close conversation"),
            lines: [t("Members can no longer post in it; they still read it."), t("A head of the department can reopen it.")],
          });
          if (!thread.closed_at && !closing) return;
          const updated = await post(`/api/threads/${threadId}/${thread.closed_at ? "reopen" : "close"}`, closing ?? {});
          state.threads.set(threadId, updated);
          drawHeader();
        } catch (e) {
          toast(explain(e));
        }
      },
    }, thread.closed_at ? t("Reopen conversation") : t("Close conversation")) : null;
    header.replaceChildren(...[
      h("div", { class: "row" }, h("span", { class: "grow" }, h("h2", {}, thread.title), patientLine,
        h("p", { class: "muted" }, state.departments.get(department)?.name ?? "")),
      thread.closed_at ? h("span", { class: "tag" }, t("Closed {time}", { time: shortTime(thread.closed_at) })) : null),
      banner,
      consultLine(),
      toggle].filter((part) => part !== null));
    // A consult's guest writes no more once it ended (members write on, under a new thread key).
    const consult = app.endToEnd.consults.known.get(threadId);
    const ended = consult?.state === "ended" && consult.guest.id === me;
    text.disabled = send.disabled = addPhotos.disabled = Boolean(thread.closed_at) || ended;
    if (takePhoto) takePhoto.disabled = addPhotos.disabled;
    tools.disable(addPhotos.disabled);
    text.placeholder = thread.closed_at ? t("This conversation is closed") : ended ? t("This consult has ended.") : t("Write a message");
  };

  /** A consult's thread (docs/advice.md, "Consults"): its state, and "End the consult" while open. */
  const consultLine = () => {
    const consult = app.endToEnd.consults.known.get(threadId);
    if (!consult) return null;
    const ending = h("button", {
      type: "button", class: "danger", id: "consult-end",
      onclick: async () => {
        if (!confirm(t("End the consult? The colleague from another department can no longer read or write what follows here."))) return;
        try {
          await endConsult(app, threadId);
          drawHeader();
        } catch (e) {
          toast(explain(e));
        }
      },
    }, t("End the consult"));
    const words = consult.state === "open"
      ? (consult.guest.id === me ? t("Consult: you are a guest of this department's conversation.") : t("Consult with a colleague from another department."))
      : consult.state === "ended" ? t("This consult has ended.") : t("This consult is waiting to be opened.");
    return h("div", { class: "row", id: "consult-state", dataset: { state: consult.state } },
      h("p", { class: "notice grow" }, words), consult.state === "open" ? ending : null);
  };

  /** @param {number} seq @returns {Receipt[]} */
  const readersOf = (seq) => [...(state.receipts.get(threadId)?.values() || [])]
    .filter((/** @type {Receipt} */ r) => r.user.id !== me && r.up_to_seq >= seq);

  /** @param {number} seq */
  const showReaders = async (seq) => {
    dialog.replaceChildren(h("p", { class: "loading" }, t("Loading…")));
    dialog.showModal();
    try {
      /** @type {MessageReaders} */
      const data = await app.live.request({ type: "receipts.fetch", thread: threadId, seq });
      const rows = data.readers.filter((r) => r.user.id !== me);
      dialog.replaceChildren(h("h2", {}, t("Seen by")),
        h("ul", { class: "list" }, rows.map((r) => h("li", { class: "card" }, h("strong", {}, state.displayName(department, r.user)), h("div", { class: "sub" }, fullTime(r.read_at))))),
        h("button", { type: "button", onclick: () => dialog.close() }, t("Close")));
      dialog.querySelector("button")?.focus();
    } catch (e) {
      dialog.replaceChildren(h("p", { class: "error" }, explain(e)), h("button", { type: "button", onclick: () => dialog.close() }, t("Close")));
    }
  };

  /**
   * Ask before removing: what happens to the message, and an optional reason for the record.
   * @param {Entry | Pending} entry
   * @param {"Delete" | "Redact"} verb
   * @returns {Promise<{reason: string} | null>} null: not confirmed
   */
  const confirmRedact = (entry, verb) => new Promise((resolve) => {
    const reason = h("textarea", { id: "redact-reason", name: "reason", rows: 2, maxlength: 500 });
    const finish = (/** @type {{reason: string} | null} */ value) => {
      redactDialog.close();
      resolve(value);
    };
    redactDialog.replaceChildren(h("form", {
      class: "stack", method: "dialog",
      onsubmit: (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        finish({ reason: reason.value });
      },
    },
    h("h2", {}, verb === "Delete" ? t("Delete your message?") : t("Redact this message?")),
    h("p", {}, t("It is removed for everyone in this conversation, photos included; a note says who removed it and when.")),
    h("p", { class: "muted" }, t("Rounds still keeps it, encrypted, with the patient's record for compliance review until its retention period ends: nothing is erased for good.")),
    h("div", {}, h("label", { for: "redact-reason" }, t("Reason (optional)")), reason),
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => finish(null) }, t("Cancel")),
      h("button", { type: "submit", class: "danger", id: "confirm-redact" }, verbLabel(verb)))));
    redactDialog.addEventListener("cancel", () => resolve(null), { once: true });
    redactDialog.showModal();
    reason.focus();
  });

  const redactButton = (/** @type {Entry | Pending} */ entry) => {
    const mine = entry.sender.id === me;
    if (entry.pending || entry.redacted || !entry.id || !(mine || state.isHead(department))) return null;
    const verb = mine ? "Delete" : "Redact";
    return h("button", {
      type: "button", class: "link", "aria-label": verb === "Delete" ? t("Delete this message") : t("Redact this message"),
      dataset: { redact: entry.seq },
      onclick: async () => {
        const answer = await confirmRedact(entry, verb);
        if (!answer) return;
        try {
          await app.redact(threadId, entry, answer.reason);
        } catch (e) {
          toast(t("Not removed: {reason}", { reason: explain(e) }));
        }
      },
    }, verbLabel(verb));
  };

  /** Edit my message: a new version for everyone, marked edited; the old one is kept. @param {Entry} entry */
  const openEdit = (entry) => {
    const field = h("textarea", { id: "edit-text", name: "text", rows: 3 });
    field.value = entry.text ?? "";
    editDialog.replaceChildren(h("form", {
      class: "stack", method: "dialog",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const value = field.value.trim();
        editDialog.close();
        if (!value || value === entry.text) return;
        try {
          await correct(app, threadId, entry, value);
        } catch (e) {
          toast(t("Not corrected: {reason}", { reason: explain(e) }));
        }
      },
    },
    h("h2", {}, t("Edit your message")),
    h("p", { class: "muted" }, t("Everyone in this conversation sees the new text, marked edited. Rounds keeps every version with the patient's record for compliance review.")),
    h("div", {}, h("label", { for: "edit-text" }, t("Message")), field),
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => editDialog.close() }, t("Cancel")),
      h("button", { type: "submit", class: "primary", id: "confirm-edit" }, t("Save")))));
    editDialog.showModal();
    field.focus();
  };

  const editButton = (/** @type {Entry | Pending} */ entry) => {
    if (entry.pending || thread?.closed_at || !editable(entry, me)) return null;
    return h("button", {
      type: "button", class: "link", "aria-label": t("Edit this message"), dataset: { edit: entry.seq },
      onclick: () => openEdit(entry),
    }, t("Edit"));
  };

  /** "edited", or a correction that did not verify: the original stays, flagged. */
  const correctionMark = (/** @type {Entry | Pending} */ e) => {
    if (e.pending) return null;
    if (e.correctionError) {
      return h("p", { class: "error correction-unverified", dataset: { code: e.correctionError } },
        t("A correction of this message could not be verified; the original is shown."));
    }
    return null;
  };

  const tombstone = (/** @type {Entry & {redacted: Redaction}} */ e) => {
    // Live events name the user ({id, username}); a history page may give the id alone.
    const by = typeof e.redacted.by === "number" ? { id: e.redacted.by } : e.redacted.by;
    // A redaction is dated: the event's, the history's, and the ack of my own.
    const time = shortTime(/** @type {string} */ (e.redacted.at));
    let line;
    if (!by?.id) line = t("Message removed by a colleague at {time}", { time });
    else if (by.id === me) line = t("Message removed by you at {time}", { time });
    else line = t("Message removed by {name} at {time}", { name: state.displayName(department, by) || t("user {id}", { id: by.id }), time });
    return h("li", { class: "msg tombstone", dataset: { seq: e.seq, clientMsgId: e.client_msg_id, redacted: "" } },
      h("p", { class: "text" }, line));
  };

  const photoTiles = (/** @type {PhotoBody} */ body, /** @type {UserRef} */ sender) => {
    const count = body.photos.length;
    return h("div", { class: "photos" }, body.photos.map((photo, i) => {
      const img = h("img", { alt: "", width: photo.thumbnail.width, height: photo.thumbnail.height });
      const tile = h("button", {
        type: "button", class: "photo",
        "aria-label": photo.captured_at
          ? t("Open photo {number} of {count}, taken {time}", { number: i + 1, count, time: fullTime(photo.captured_at) })
          : t("Open photo {number} of {count}, taken date unknown", { number: i + 1, count }),
        dataset: { upload: photo.upload },
        onclick: () => openViewer(app, urls, { photo, senderName: state.displayName(department, sender), patient: thread?.patient }),
      }, img);
      urls.url(photo).then((url) => {
        img.src = url;
        tile.classList.add("ready");
      }).catch((error) => tile.replaceChildren(h("span", { class: "error" }, t("Photo refused: {reason}", { reason: explain(error) }))));
      return tile;
    }), h("div", { class: "tags" },
      [...new Set(body.photos.flatMap((p) => p.keywords || []))].map((k) => h("span", { class: "tag" }, keywordLabel(keywordList, k))),
      h("span", { class: "tag consent" }, consentLabel(body.photos[0].consent))));
  };

  /** Bring the first delivery of a duplicate into view, and focus it. @param {number} messageId */
  const showFirst = (messageId) => {
    const first = /** @type {HTMLLIElement | null} */ (list.querySelector(`li[data-message-id="${Number(messageId)}"]`));
    if (!first) {
      toast(t("The first delivery of this message is further up the conversation."));
      return;
    }
    first.scrollIntoView({ block: "center" });
    first.focus();
  };

  /** The same envelope delivered again under another message id: never a new message (R6). */
  const duplicate = (/** @type {Entry} */ e) => h("li", {
    class: "msg duplicate",
    dataset: { seq: e.seq, clientMsgId: e.client_msg_id, messageId: e.id ?? "", code: "duplicate", duplicateOf: e.duplicateOf ?? "" },
  },
  h("div", { class: "meta" }, h("strong", {}, e.sender.id === me ? t("You") : state.displayName(department, e.sender)),
    h("time", { datetime: e.created_at, title: fullTime(e.created_at) }, shortTime(e.created_at))),
  h("p", { class: "text" }, t("Delivered again by the server — the same message as above.")),
  e.duplicateOf ? h("button", { type: "button", class: "link", onclick: () => showFirst(/** @type {number} */ (e.duplicateOf)) }, t("Show the first delivery")) : null);

  /** The sender's own clock, when it is far from the server's time. */
  const sentAt = (/** @type {Entry | Pending} */ e) => {
    if (!e.sentAt || !e.created_at) return null;
    const gap = Math.abs(Date.parse(e.sentAt) - Date.parse(e.created_at));
    if (!(gap > CLOCK_GAP_MS)) return null;
    return h("span", {
      class: "sent-at muted",
      title: t("Written at {written} by the sender's clock; the server received it at {received}", { written: fullTime(e.sentAt), received: fullTime(e.created_at) }),
    }, t("written {time}", { time: shortTime(e.sentAt) }));
  };

  const drawMessages = () => {
    const entries = [...state.threadMessages(threadId).values()].sort((a, b) => a.seq - b.seq);
    const stored = new Set(entries.map((e) => e.client_msg_id));
    const pending = [...state.outbox.values()].filter((o) => o.thread === threadId && !stored.has(o.client_msg_id));
    const lastMine = [...entries].reverse().find((e) => e.sender.id === me);
    const nearBottom = list.parentElement && (window.innerHeight + window.scrollY >= document.body.scrollHeight - 80);
    const items = [];
    for (const e of [...entries, ...pending]) {
      if (e.redacted) {
        items.push(tombstone(e));
        continue;
      }
      if (e.error?.code === "duplicate") {
        items.push(duplicate(e));
        continue;
      }
      const mine = e.sender.id === me;
      const undecryptable = e.text === null;
      // A refusal carries its code (data-code), so what was refused, and why, can be checked.
      const code = undecryptable ? e.error?.code ?? "crypto_error" : null;
      items.push(h("li", {
        class: `msg${mine ? " mine" : ""}${undecryptable ? " undecryptable" : ""}`, tabindex: e.id ? -1 : null,
        dataset: { seq: e.seq ?? "", clientMsgId: e.client_msg_id, messageId: e.id ?? "", code, edited: e.pending ? null : e.edited ?? null },
      },
      h("div", { class: "meta" }, h("strong", {}, mine ? t("You") : state.displayName(department, e.sender)),
        h("span", { class: "row end" }, h("time", { datetime: e.created_at, title: fullTime(e.created_at) }, e.pending ? (e.failed ? t("Not sent") : t("Sending…")) : shortTime(e.created_at)),
          !e.pending && e.edited ? h("span", { class: "edited muted", title: t("Corrected by its sender; earlier versions are kept for compliance review") }, t("edited")) : null,
          sentAt(e), editButton(e), redactButton(e))),
      e.body || e.photos ? photoTiles(e.body || e.photos, e.sender) : null,
      undecryptable ? h("div", { class: "text" }, code === "attachment_mismatch" ? explain(e.error) : t("Cannot be read on this device: {reason}", { reason: explain(e.error) }))
        : e.text ? h("div", { class: "text" }, e.text) : null,
      correctionMark(e), adviceBadge(app, e.id)));
      if (e === lastMine) {
        const readers = readersOf(e.seq);
        if (readers.length) {
          const names = readers.map((r) => state.displayName(department, r.user)).join(", ");
          items.push(h("li", {}, h("button", { type: "button", class: "seen", id: "seen-by", onclick: () => showReaders(e.seq), "aria-label": t("Seen by {names}. Show times.", { names }) }, t("Seen by {names}", { names }))));
        }
      }
    }
    list.replaceChildren(...items);
    if (!entries.length && !pending.length) list.append(h("li", { class: "muted" }, t("No message yet.")));
    if (nearBottom) window.scrollTo(0, document.body.scrollHeight);
  };

  const drawTyping = () => {
    const now = Date.now();
    const who = [...(state.typing.get(threadId)?.values() || [])].filter((typing) => typing.until > now && typing.user.id !== me);
    const names = who.map((typing) => state.displayName(department, typing.user)).join(", ");
    typingLine.textContent = who.length ? tn(who.length, "{names} is typing…", "{names} are typing…", { names }) : "";
  };
  const typingTimer = setInterval(drawTyping, 2000);

  const onChange = (/** @type {Event} */ event) => {
    const { what, thread: changed, department: where } = /** @type {ChangeEvent} */ (event).detail;
    if (changed !== undefined && changed !== threadId) return;
    if (what === "thread") drawHeader();
    if (["decrypted", "outbox", "receipt"].includes(what)) drawMessages();
    // The member list was dropped (an admission, a signature): fetch it again for the names.
    if (what === "members" && department !== undefined && where === department) {
      state.departmentMembers(department).catch(() => []).then(drawMessages);
    }
    if (what === "typing") drawTyping();
    if (what === "advice.updated") drawMessages(); // a message became a request, or its state changed
    const consult = /** @type {{consult?: {thread: number}} | undefined} */ (/** @type {ChangeEvent} */ (event).detail.frame)?.consult;
    if (what === "consult.updated" && consult?.thread === threadId) drawHeader();
    // A guest's events are outside the department's stream: after a reconnect, the history again.
    if (what === "departments" && app.endToEnd.consults.known.get(threadId)?.guest.id === me) {
      app.loadHistory(threadId).then(drawMessages).catch(() => {});
    }
  };
  state.addEventListener("change", onChange);

  composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = text.value.trim();
    if (!body) return;
    text.value = "";
    lastTyping = 0;
    app.typing(threadId, false);
    try {
      await tools.sent(await app.send(threadId, body), body);
    } catch (e) {
      toast(t("Not sent: {reason}", { reason: explain(e) }));
    }
  });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  text.addEventListener("input", () => {
    const now = Date.now();
    if (text.value && now - lastTyping > TYPING_REFRESH_MS) {
      lastTyping = now;
      app.typing(threadId, true);
    }
  });

  let left = false; // unmounted: set by unmount below
  let settled = false; // the load below finished on screen: it marked the thread read
  (async () => {
    try {
      if (!thread) {
        await app.connected();
        for (const d of state.departments.keys()) await state.loadDepartment(d);
        thread = state.threads.get(threadId) ?? await guestThread(app, threadId); // a consult I am the guest of
        if (!thread) throw new E2EError("not_found", "thread not found in my departments");
      }
      drawHeader();
      await state.departmentMembers(department).catch(() => []);
      await app.loadHistory(threadId);
      await state.loadReceipts(threadId).catch(() => {});
      await loadAdvice(app, /** @type {number} */ (department)).catch(() => {}); // which messages are requests
      drawHeader(); // a consult is known once its first thread-key message was read
      drawMessages();
      // Left meanwhile (a slow load): the screen now shown is not reading this thread, so
      // what arrives next stays unread (unmount marked read what was on screen).
      if (left) return;
      settled = true;
      app.openThread = threadId;
      app.markRead(threadId);
      // Fetch the key to post with now, so a message written in a lift does not wait for it.
      app.endToEnd.currentKey(/** @type {number} */ (department), threadId).catch(() => {});
      window.scrollTo(0, document.body.scrollHeight);
    } catch (e) {
      header.replaceChildren(h("p", { class: "error", role: "alert" }, explain(e)));
      composer.hidden = true;
    }
  })();

  drawHeader();
  const el = h("div", { class: "conversation" }, header, list, typingLine, composer, dialog, redactDialog, editDialog);
  return {
    el, title: t("Conversation"), back: true, focus: text,
    unmount: () => {
      left = true;
      // Left before the load finished: what was on screen was read all the same.
      if (!settled && list.querySelector("li.msg")) app.markRead(threadId);
      clearInterval(typingTimer);
      urls.revoke();
      state.removeEventListener("change", onChange);
      if (lastTyping) app.typing(threadId, false);
    },
  };
}


/**
 * The thread banner: the real rule and date the server computed (patients/retention.py).
 * @param {Retention | null | undefined} retention
 */
export function retentionNotice(retention) {
  if (!retention) return t("This conversation is retained with the patient's record and may be reviewed for compliance.");
  // The rule is the server's sentence (patients/retention.py).
  const { rule } = retention;
  if (!retention.until) return t("This conversation is retained with the patient's record and may be reviewed for compliance: {rule}.", { rule });
  const until = new Date(`${retention.until}T00:00:00`).toLocaleDateString(locale(), { year: "numeric", month: "long", day: "numeric" });
  return t("This conversation is retained with the patient's record and may be reviewed for compliance, until {until}: {rule}.", { until, rule });
}
