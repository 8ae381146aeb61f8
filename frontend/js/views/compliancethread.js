// @ts-check
// A thread's whole timeline under a review case, decrypted in this browser:
// every message, redacted ones included (marked: who, when, on which right,
// why), photos with their keywords and consent, "Seen by" with times, who was
// a member when each message was written, and each message's check result
// (compliance/reader.js: the chain from the pinned admin key, the key version,
// the sender's signature with the key the chain admitted). A message whose
// check fails is shown with its code, never left out. Also the department's
// signed membership, its membership records and its key versions.
import { get } from "../api.js";
import { consentLabel, ImageUrls, keywordLabel, keywords } from "../photos/photos.js";
import { h, explain, fullTime, shortTime, showError } from "../ui.js";
import { keyForm, patientText } from "./compliancecase.js";
import { openViewer } from "./viewer.js";
import { N_, t, tn } from "../i18n.js";

const PAGE = 200;
const MAX_PAGES = 50; // 10,000 messages: a narrower case beyond that
const FAR = 10 * 60 * 1000;
// The codes of the signed statements and records, in words where they are shown.
/** @type {Record<string, string>} */
const KINDS = { admit: N_("admit"), replace: N_("replace"), role: N_("role"), remove: N_("remove") };
/** @type {Record<string, string>} */
const ROLES = { member: N_("member"), head: N_("head"), sender: N_("sender") };
const word = (/** @type {Record<string, string>} */ table, /** @type {string} */ code) => (table[code] ? t(table[code]) : code);

/** @import { Correction, MembershipRecord, PhotoBody, Refusal, StoredStatement, Timeline, TimelineAttachment, TimelineMessage, TimelineReceipt, UserRef } from "../types/api.js" */
/** @import { ParsedEnvelope, Statement } from "../crypto.js" */
/** @import { Reader, VerifiedDepartment } from "../compliance/reader.js" */

/** @param {number} caseId @param {number} threadId */
async function wholeTimeline(caseId, threadId) {
  /** @type {Timeline[]} */
  const pages = [];
  let after = 0;
  for (let i = 0; i < MAX_PAGES; i++) {
    /** @type {Timeline} */
    const page = await get(`/api/compliance/cases/${caseId}/threads/${threadId}/timeline?after_seq=${after}&limit=${PAGE}`);
    pages.push(page);
    if (!page.has_more || !page.messages.length) break;
    after = page.messages[page.messages.length - 1].seq;
  }
  const last = pages[pages.length - 1];
  return {
    thread: last.thread,
    department: last.department,
    messages: pages.flatMap((p) => p.messages),
    receipts: pages.flatMap((p) => p.receipts),
    attachments: pages.flatMap((p) => p.attachments),
    truncated: last.has_more,
  };
}

/** @typedef {Awaited<ReturnType<typeof wholeTimeline>>} WholeTimeline every page of a thread's timeline, as one */

/**
 * For each message, who had read up to it, and since when (the first receipt that covers it).
 * @param {TimelineMessage[]} messages
 * @param {TimelineReceipt[]} receipts
 */
function seenBy(messages, receipts) {
  /** @type {Map<number, TimelineReceipt[]>} message id → receipts */
  const seen = new Map();
  for (const m of messages) {
    /** @type {Map<number, TimelineReceipt>} user id → their first receipt covering it */
    const readers = new Map();
    for (const r of receipts) {
      if (r.up_to_seq < m.seq || r.user.id === m.sender.id) continue;
      const at = readers.get(r.user.id);
      if (!at || r.read_at < at.read_at) readers.set(r.user.id, r);
    }
    seen.set(m.id, [...readers.values()].sort((a, b) => a.read_at.localeCompare(b.read_at)));
  }
  return seen;
}

/**
 * @param {import("../app.js").App} app
 * @param {number} caseId
 * @param {number} threadId
 */
export function render(app, caseId, threadId) {
  const urls = new ImageUrls({ caseId });
  const problem = h("p", { class: "error", role: "alert", id: "timeline-error" });
  const head = h("div", { class: "card stack", id: "timeline-head" }, h("p", { class: "loading" }, t("Loading the timeline…")));
  const keyBox = h("div", { class: "stack" });
  const list = h("ol", { class: "messages", id: "timeline", "aria-label": t("Messages, oldest first") });
  const members = h("details", { class: "card", id: "membership" }, h("summary", {}, t("Membership")));
  const versions = h("details", { class: "card", id: "key-versions" }, h("summary", {}, t("Conversation keys")));
  /** @type {Map<number, string>} */
  let names = new Map();
  /** @type {import("../photos/photos.js").Keyword[]} */
  let terms = [];
  // The whole timeline once loaded: nothing below is drawn before (casts to WholeTimeline say so).
  /** @type {WholeTimeline | null} */
  let data = null;
  /** @type {import("../compliance/reader.js").VerifiedDepartment | null} */
  let department = null;
  /** @type {Refusal | null} anything thrown: the department's chain did not verify, and every message fails with it */
  let chainError = null;
  keywords().then((k) => (terms = k)).catch(() => {});

  const name = (/** @type {number} */ id) => names.get(id) ?? t("user {id}", { id });

  const photos = (/** @type {TimelineMessage} */ m, /** @type {PhotoBody} */ body) => {
    /** @type {TimelineAttachment[]} */
    const records = /** @type {WholeTimeline} */ (data).attachments.filter((a) => a.message === m.id).sort((a, b) => a.position - b.position);
    return h("div", { class: "photos" }, body.photos.map((photo, i) => {
      /** @type {Partial<TimelineAttachment>} */
      const record = records[i] ?? {};
      const img = h("img", { alt: "" });
      const tags = (record.keywords ?? photo.keywords ?? []).map((k) => keywordLabel(terms, k));
      const button = h("button", {
        type: "button", class: "photo", "aria-label": tags.length ? t("Photo {number}: {keywords}", { number: i + 1, keywords: tags.join(", ") }) : t("Photo {number}", { number: i + 1 }),
        onclick: () => openViewer(app, urls, { photo, senderName: m.sender.username }),
      }, img);
      urls.url(photo).then((url) => {
        img.src = url;
        button.classList.add("ready");
      }).catch((error) => {
        img.remove();
        button.append(h("span", { class: "error" }, explain(error)));
      });
      return h("figure", { class: "review-photo" }, button, h("figcaption", { class: "tags" },
        tags.map((tag) => h("span", { class: "tag" }, tag)),
        h("span", { class: "tag consent" }, t("Consent: {consent}", { consent: consentLabel(record.consent ?? photo.consent) })),
        record.captured_at ? h("span", { class: "tag" }, t("Taken {time}", { time: fullTime(record.captured_at) })) : null));
    }));
  };

  const membersWhen = (/** @type {ParsedEnvelope | null} */ header) => {
    if (!header || !department) return null;
    const chain = department.chain;
    /** @type {[number, import("../crypto.js").Member][]} */
    const at = [];
    for (const id of names.keys()) {
      const m = chain.memberAt(id, header.chain_seq);
      if (m) at.push([id, m]);
    }
    return h("details", { class: "sub members-then" }, h("summary", {}, t("Members when written (statement {seq})", { seq: header.chain_seq })),
      h("p", {}, at.map(([id, m]) => (m.role === "head" ? t("{name} (head)", { name: name(id) }) : name(id))).join(", ") || t("none")));
  };

  /** A version of a corrected message, with its own check. */
  const version = (/** @type {TimelineMessage} */ m, /** @type {Correction} */ correction) => {
    const when = { time: fullTime(correction.corrected_at), version: correction.version };
    try {
      if (chainError) throw chainError;
      const opened = app.review.openCorrection(m, correction, /** @type {WholeTimeline} */ (data).thread.department);
      const text = opened.text === null
        ? t("Corrected {time}, version {version}: not decrypted: {reason}", { ...when, reason: explain(opened.keyError) })
        : t("Corrected {time}, version {version}: “{text}” (signature verified)", { ...when, text: opened.text });
      return h("p", { class: "version", dataset: { version: correction.version, check: "ok" } }, text);
    } catch (error) {
      const code = /** @type {Refusal} */ (error).code ?? "error";
      return h("p", { class: "error version", dataset: { version: correction.version, check: code } },
        t("Corrected {time}, version {version}: check failed: {reason}", { ...when, reason: explain(error) }));
    }
  };

  const entry = (/** @type {TimelineMessage} */ m, /** @type {TimelineReceipt[]} */ seen) => {
    const li = h("li", { class: "msg", dataset: { seq: m.seq, message: m.id } });
    /** @type {ReturnType<Reader["open"]> | null} */
    let opened = null;
    /** @type {Refusal | null} anything thrown */
    let failure = chainError;
    if (!failure) {
      try {
        opened = app.review.open(m, /** @type {WholeTimeline} */ (data).thread.department);
      } catch (error) {
        failure = /** @type {Refusal} */ (error);
      }
    }
    // Without a failure, open() returned: `opened` is set.
    const check = failure ? failure.code ?? "error" : /** @type {ReturnType<Reader["open"]>} */ (opened).text === null ? "signature_only" : "ok";
    li.dataset.check = check;
    const meta = h("div", { class: "meta" }, h("strong", {}, m.sender.username),
      h("time", { datetime: m.created_at, title: fullTime(m.created_at) }, shortTime(m.created_at)));
    /** @type {(HTMLElement | null)[]} */
    const parts = [meta];
    if (m.redacted) {
      // The id of who redacted it (a live event would name them), and a case's reasons.
      const r = /** @type {{at: string, by: number | UserRef, right?: string | null, reason?: string}} */ (m.redacted);
      li.classList.add("redacted");
      const who = { name: name(/** @type {Partial<UserRef>} */ (r.by)?.id ?? /** @type {number} */ (r.by)), time: fullTime(r.at),
        right: word(ROLES, r.right ?? ""), reason: r.reason };
      let said;
      if (r.right) {
        said = r.reason ? t("Redacted by {name} {time} (as {right}) — reason: “{reason}”", who)
          : t("Redacted by {name} {time} (as {right}) — no reason given", who);
      } else {
        said = r.reason ? t("Redacted by {name} {time} — reason: “{reason}”", who) : t("Redacted by {name} {time} — no reason given", who);
      }
      parts.push(h("p", { class: "notice redaction" }, said));
    }
    if (opened?.text !== null && opened) {
      if (opened.text) parts.push(h("p", { class: "text" }, opened.text));
      if (opened.body) parts.push(photos(m, opened.body));
      const sent = opened.header.sent_at;
      if (Math.abs(new Date(sent).getTime() - new Date(m.created_at).getTime()) > FAR) parts.push(h("p", { class: "sub sent-at" }, t("written {time}", { time: fullTime(sent) })));
    } else if (opened) {
      parts.push(h("p", { class: "text muted" }, t("Not decrypted: {reason}", { reason: explain(opened.keyError) })));
    }
    const result = failure
      ? h("p", { class: "error check", dataset: { code: failure.code ?? "" } }, t("Check failed: {reason}", { reason: explain(failure) }))
      : h("p", { class: "sub check" }, t("Signature verified: {name}, a member at statement {seq}, key version {version}", {
        name: m.sender.username, seq: /** @type {ReturnType<Reader["open"]>} */ (opened).header.chain_seq,
        version: /** @type {ReturnType<Reader["open"]>} */ (opened).header.key_version,
      }));
    parts.push(result);
    // Every correction, oldest first: its own signed envelope, bound to this message.
    for (const correction of m.corrections ?? []) parts.push(version(m, correction));
    if (seen.length) {
      parts.push(h("p", { class: "sub seen-by" }, t("Seen by {readers}", { readers: seen.map((r) => `${r.user.username} ${fullTime(r.read_at)}`).join(", ") })));
    }
    parts.push(membersWhen(opened?.header ?? null));
    li.append(...parts.filter((part) => part !== null));
    return li;
  };

  // Drawn once the department verified.
  const drawMembership = () => {
    if (!department) return;
    const chain = department.chain;
    const statements = department.raw.chain.statements.map((/** @type {StoredStatement} */ s) => s.signed.statement);
    members.replaceChildren(h("summary", {}, tn(chain.members.size, "Membership: {count} member now, {statements} signed statements (verified)",
      "Membership: {count} members now, {statements} signed statements (verified)", { statements: statements.length })),
    h("ol", { class: "sub", "aria-label": t("Signed membership statements") }, statements.map((/** @type {Statement} */ s) => {
      const said = { kind: word(KINDS, s.kind), name: name(s.subject_user), role: word(ROLES, s.role), time: fullTime(s.issued_at) };
      return h("li", {}, s.signer_user === null
        ? t("{kind} {name} ({role}), signed by the institution's admin key, {time}", said)
        : t("{kind} {name} ({role}), signed by {signer}, {time}", { ...said, signer: name(s.signer_user) }));
    })),
    h("h3", {}, t("Membership records")),
    h("ul", { class: "sub", "aria-label": t("Membership records") }, department.raw.memberships.map((/** @type {MembershipRecord} */ r) => {
      // Each clause whole, and the record's line around them.
      const admitted = r.admitted_by ? t("admitted {time} by {name}", { time: fullTime(r.admitted_at), name: name(r.admitted_by) })
        : t("admitted {time}", { time: fullTime(r.admitted_at) });
      const removed = !r.removed_at ? "" : r.removed_by ? t("removed {time} by {name}", { time: fullTime(r.removed_at), name: name(r.removed_by) })
        : t("removed {time}", { time: fullTime(r.removed_at) });
      const who = { name: r.user.username, role: word(ROLES, r.role), admitted, removed };
      return h("li", {}, removed ? t("{name} ({role}): {admitted}, {removed}", who) : t("{name} ({role}): {admitted}", who));
    })));
  };

  const drawVersions = () => {
    if (!department) return;
    const held = app.review.keys.get(department.id) ?? new Map();
    const refused = app.review.refusedWraps.get(department.id) ?? new Map();
    const line = (/** @type {number} */ version, /** @type {import("../compliance/reader.js").ReleasedVersion} */ v) => {
      if (v.error) return t("Version {version}: record refused ({reason})", { version, reason: explain(v.error) });
      const made = { version, name: name(v.record.creator_user), seq: v.record.chain_seq };
      if (held.has(version)) return t("Version {version}: made by {name} at statement {seq}, signature verified; opened with the compliance key", made);
      if (refused.has(version)) {
        return t("Version {version}: made by {name} at statement {seq}, signature verified; not opened: {reason}", { ...made, reason: explain(refused.get(version)) });
      }
      return t("Version {version}: made by {name} at statement {seq}, signature verified; not opened yet", made);
    };
    versions.replaceChildren(h("summary", {}, t("Conversation keys: {count}", { count: department.versions.size })),
      h("ul", { class: "sub" }, [...department.versions].map(([version, v]) => h("li", { dataset: { version } }, line(version, v)))));
  };

  const drawMessages = () => {
    const seen = seenBy(/** @type {WholeTimeline} */ (data).messages, /** @type {WholeTimeline} */ (data).receipts);
    // seenBy lists every message, if only with nobody.
    list.replaceChildren(.../** @type {WholeTimeline} */ (data).messages.map((m) => entry(m, /** @type {TimelineReceipt[]} */ (seen.get(m.id)))));
    if (!(/** @type {WholeTimeline} */ (data).messages.length)) list.append(h("li", { class: "muted" }, t("No message in this case's dates.")));
    drawVersions();
    if (!department) return; // drawn once the department verified
    const missing = app.review.missingKeys(department); // department: verified, and never unset after
    keyBox.replaceChildren(missing.length ? keyForm(app, async () => [/** @type {VerifiedDepartment} */ (department)], () => drawMessages()) : h("p", { class: "muted", role: "status", id: "keys-held" }, t("Every conversation key of this thread is open in this browser.")));
  };

  const el = h("div", { class: "stack", id: "compliance-thread" }, head, problem, keyBox, list, members, versions);

  (async () => {
    try {
      data = await wholeTimeline(caseId, threadId);
    } catch (error) {
      head.replaceChildren();
      showError(problem, error);
      const refusal = /** @type {Refusal} */ (error);
      if (refusal.status) problem.textContent = `${refusal.message} (${refusal.code})`; // the server's sentence, in the chosen language
      return;
    }
    const thread = data.thread;
    names = new Map(data.department.memberships.map((r) => [r.user.id, r.user.username]));
    for (const m of data.messages) names.set(m.sender.id, m.sender.username);
    const opened = { number: thread.department, time: fullTime(thread.created_at) };
    head.replaceChildren(h("h2", {}, thread.title), h("p", {}, patientText(thread.patient)),
      h("p", { class: "sub" }, thread.closed_at
        ? t("Department no. {number} · opened {time} · closed {closed}", { ...opened, closed: fullTime(thread.closed_at) })
        : t("Department no. {number} · opened {time}", opened)));
    if (data.truncated) head.append(h("p", { class: "notice" }, t("More messages than this screen shows: narrow the case's dates.")));
    app.retitle(el, thread.title);
    const server = data.department.compliance?.fingerprint;
    if (server && app.pins?.compliance && server !== app.pins.compliance) {
      head.append(h("p", { class: "error", role: "alert", dataset: { code: "compliance_key_mismatch" } }, explain({ code: "compliance_key_mismatch" })));
    }
    try {
      department = await app.review.verifyDepartment(data.department);
    } catch (error) {
      // The chain does not verify: every message is listed, each with the check that failed.
      chainError = /** @type {Refusal} */ (error);
      showError(problem, error);
      const seen = seenBy(data.messages, data.receipts);
      list.replaceChildren(...data.messages.map((m) => entry(m, /** @type {TimelineReceipt[]} */ (seen.get(m.id)))));
      return;
    }
    drawMembership();
    drawMessages();
  })();

  return { el, title: t("Timeline"), back: true, unmount: () => urls.revoke() };
}
